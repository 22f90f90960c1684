package qwen.service.backend;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;
import qwen.service.engine.ShardEngine;

/**
 * Says in every test report whether the TornadoVM GPU backend was built and tested. It is built
 * only with a TornadoVM SDK (TORNADOVM_HOME); its own tests then run in a separate JVM with the
 * SDK's flags. Run them with: {@code TORNADOVM_HOME=/path/to/sdk ./qwen test}.
 */
class TornadoBackendPresenceTest {

    @Test
    void theTornadoBackendIsBuiltWhenTheSdkIsPresent() {
        assumeTrue("built".equals(System.getProperty("qwen.test.tornado")),
                "TornadoVM backend NOT built and NOT tested: TORNADOVM_HOME is unset. "
                        + "Run `TORNADOVM_HOME=/path/to/tornadovm-sdk ./qwen test` to build and test it");
        assertTrue(getClass().getClassLoader().getResource(
                "qwen/service/backend/tornado/TornadoBackendProvider.class") != null);
    }

    @Test
    void withoutTheBackendTheErrorSaysHowToGetIt() {
        assumeTrue(System.getProperty("qwen.test.tornado") == null, "the backend is built in this run");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> BackendProvider.named("tornado", ShardEngine.TORNADO_HOW_TO));
        assertTrue(e.getMessage().contains("TORNADOVM_HOME"), e.getMessage());
    }
}
