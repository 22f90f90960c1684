package qwen.service.backend;

/**
 * Settings of an accelerator backend.
 *
 * @param device which device, as the backend names them (TornadoVM: "driver:device", e.g. "0:0");
 *     null for the backend's default device
 * @param maxStepTokens most token rows one step may carry; sizes the device's step buffers
 * @param cudaGraphs on NVIDIA devices, record the step's launches once and replay them
 * @param tensorCores on NVIDIA devices, run prefill and large batches through the tensor cores
 */
public record DeviceOptions(String device, int maxStepTokens, boolean cudaGraphs, boolean tensorCores) {

    public DeviceOptions {
        if (maxStepTokens < 1) {
            throw new IllegalArgumentException("maxStepTokens must be at least 1, got " + maxStepTokens);
        }
    }

    /** The default: CUDA graphs and tensor cores where the device has them. */
    public DeviceOptions(String device, int maxStepTokens) {
        this(device, maxStepTokens, true, true);
    }
}
