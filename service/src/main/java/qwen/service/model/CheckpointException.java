package qwen.service.model;

/**
 * A checkpoint or model directory that cannot be loaded. The message names the file (and the
 * tensor, where one is at fault) and says what was expected, so an operator can fix the files
 * without reading a stack trace.
 */
public class CheckpointException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
