package qwen.service.backend.tornado;

import qwen.service.backend.BackendProvider;
import qwen.service.backend.ComputeBackend;
import qwen.service.backend.DeviceOptions;
import qwen.service.model.ShardWeights;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

/**
 * Starts {@link TornadoBackend} on the configured device after checking that the device exists
 * and that the weights, the KV budget and the step buffers fit in its memory.
 */
public final class TornadoBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "tornado";
    }

    @Override
    public ComputeBackend open(ShardWeights weights, DeviceOptions options, long kvBudgetBytes) {
        requireKernelClassFiles();
        TornadoDevice device = select(options.device());
        long need = DeviceWeights.bytesFor(weights) + kvBudgetBytes
                + StepBuffers.bytesFor(weights.config(), options.maxStepTokens(), 1 << 16, weights.range().head(),
                        options.tensorCores() && TornadoBackend.hasTensorCores(device));
        long have = device.getMaxGlobalMemory();
        if (need > have) {
            throw new IllegalStateException("TornadoVM device " + device.getDeviceName() + " has " + (have >> 20)
                    + " MiB but the shard needs " + (need >> 20) + " MiB (fp16 weights "
                    + (DeviceWeights.bytesFor(weights) >> 20) + " MiB + KV budget " + (kvBudgetBytes >> 20)
                    + " MiB + step buffers); lower qwen.shard.kv-budget-mb or max-step-tokens, or hold fewer layers");
        }
        return new TornadoBackend(weights, device, options.maxStepTokens(), kvBudgetBytes, options.cudaGraphs(),
                options.tensorCores());
    }

    /**
     * TornadoVM reads a kernel's class file through the system class loader. Under `java -jar
     * quarkus-run.jar` that loader sees only the runner jar, and the first step would fail deep in
     * TornadoVM; say at start-up how to launch instead.
     */
    private static void requireKernelClassFiles() {
        String kernels = LinearKernels.class.getName().replace('.', '/') + ".class";
        if (ClassLoader.getSystemClassLoader().getResource(kernels) == null) {
            throw new IllegalStateException("TornadoVM reads the kernels' class files through the system class loader, which"
                    + " cannot see " + kernels + ": put the application jar on the class path and start Quarkus' entry"
                    + " point, e.g. java @$TORNADOVM_HOME/tornado-argfile ... -cp 'quarkus-app/quarkus-run.jar:quarkus-app/app/*'"
                    + " io.quarkus.bootstrap.runner.QuarkusEntryPoint (./qwen serve --gpu does)");
        }
    }

    private static TornadoDevice select(String spec) {
        if (spec == null) {
            return TornadoExecutionPlan.DEFAULT_DEVICE;
        }
        String[] parts = spec.split(":");
        int driver = Integer.parseInt(parts[0]);
        int index = Integer.parseInt(parts[1]);
        try {
            return TornadoExecutionPlan.getDevice(driver, index);
        } catch (RuntimeException e) {
            throw new IllegalStateException("no TornadoVM device " + spec + " (" + e.getMessage()
                    + "); `tornado --devices` lists the devices", e);
        }
    }
}
