package qwen.service.backend;

/**
 * Settings of an accelerator backend.
 *
 * @param device which device, as the backend names them (TornadoVM: "driver:device", e.g. "0:0");
 *     null for the backend's default device
 * @param maxStepTokens most token rows one step may carry; sizes the device's step buffers
 */
public record DeviceOptions(String device, int maxStepTokens) {

    public DeviceOptions {
        if (maxStepTokens < 1) {
            throw new IllegalArgumentException("maxStepTokens must be at least 1, got " + maxStepTokens);
        }
    }
}
