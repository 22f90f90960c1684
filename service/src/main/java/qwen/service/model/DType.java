package qwen.service.model;

/** Element types a checkpoint tensor may have, with their safetensors header tags. */
public enum DType {
    F32("F32", 4),
    F16("F16", 2),
    BF16("BF16", 2);

    private final String tag;
    private final int bytes;

    DType(String tag, int bytes) {
        this.tag = tag;
        this.bytes = bytes;
    }

    /** The dtype string used in safetensors headers ("F32", "F16", "BF16"). */
    public String tag() {
        return tag;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** Parses a safetensors dtype tag; null when the tag names a type we do not load. */
    public static DType ofTag(String tag) {
        for (DType t : values()) {
            if (t.tag.equals(tag)) {
                return t;
            }
        }
        return null;
    }
}
