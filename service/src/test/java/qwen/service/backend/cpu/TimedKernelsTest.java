package qwen.service.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;
import qwen.service.model.DType;
import qwen.service.model.Matrix;

/** The timing decorator passes every call through unchanged and counts calls, time and matmul work by operation. */
class TimedKernelsTest {

    @Test
    void delegatesAndCountsByOperation() throws Exception {
        Matrix w = KernelTestData.matrix(DType.BF16, 6, 16, 1);
        Matrix block = new Matrix("transformer.h.3.mlp.w1.weight", w.dtype(), w.rows(), w.cols(), w.data());
        float[] x = KernelTestData.floats(3 * 16, 1f, 2);
        float[] expected = new float[3 * 6];
        new ScalarKernels().matmul(block, x, 3, expected);
        try (TimedKernels timed = new TimedKernels(new ScalarKernels())) {
            float[] actual = new float[3 * 6];
            timed.matmul(block, x, 3, actual);
            assertArrayEquals(expected, actual);
            timed.matmul(block, x, 1, actual);
            float[] y = x.clone();
            timed.add(y, x, y.length);
            assertEquals(2 * x[5], y[5]);

            Map<String, TimedKernels.Op> ops = timed.ops();
            TimedKernels.Op matmul = ops.get("matmul mlp.w1");
            assertEquals(2, matmul.calls());
            assertEquals(2.0 * (3 + 1) * 6 * 16, matmul.flops());
            assertTrue(matmul.nanos() > 0);
            assertEquals(1, ops.get("add").calls());
            timed.reset();
            assertTrue(timed.ops().isEmpty());
        }
    }
}
