package qwen.service.backend;

import java.util.ServiceLoader;
import qwen.service.model.ShardWeights;

/**
 * A compute backend that lives outside the core build (the TornadoVM GPU backend is compiled only
 * where its SDK is installed), found through {@link ServiceLoader}.
 */
public interface BackendProvider {

    /** The name configuration selects it by, e.g. "tornado". */
    String name();

    /**
     * Starts the backend on its device with the shard's weights, or throws
     * {@link IllegalStateException} saying why it cannot (no device, not enough memory).
     *
     * @param kvBudgetBytes bytes of KV cache the device must hold beside the weights
     */
    ComputeBackend open(ShardWeights weights, DeviceOptions options, long kvBudgetBytes);

    /**
     * The provider called {@code name}; fails with a message that says how to get it when this
     * build does not contain it or the JVM was started without what it needs.
     */
    static BackendProvider named(String name, String howToBuild) {
        try {
            for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
                if (p.name().equals(name)) {
                    return p;
                }
            }
        } catch (java.util.ServiceConfigurationError | LinkageError e) {
            throw new IllegalStateException("the " + name + " backend is in this build but could not be loaded ("
                    + e.getMessage() + "); " + howToBuild, e);
        }
        throw new IllegalStateException("the " + name + " backend is not in this build; " + howToBuild);
    }
}
