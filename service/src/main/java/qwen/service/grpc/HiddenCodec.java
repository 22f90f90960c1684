package qwen.service.grpc;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import qwen.proto.shard.v1.HiddenEncoding;
import qwen.proto.shard.v1.HiddenStates;

/**
 * Hidden-state rows on the wire (shard.proto HiddenStates): little-endian F32, or BF16 as the
 * upper 16 bits of each F32 rounded to nearest even.
 */
final class HiddenCodec {

    private HiddenCodec() {
    }

    /** Bytes per element of an encoding; 0 for UNSPECIFIED or an unknown value. */
    static int width(HiddenEncoding encoding) {
        return switch (encoding) {
            case HIDDEN_ENCODING_F32 -> Float.BYTES;
            case HIDDEN_ENCODING_BF16 -> Short.BYTES;
            default -> 0;
        };
    }

    /** The floats of {@code hidden}; the caller has checked the encoding and the byte size. */
    static float[] decode(HiddenStates hidden) {
        ByteBuffer bytes = hidden.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        if (hidden.getEncoding() == HiddenEncoding.HIDDEN_ENCODING_F32) {
            float[] out = new float[bytes.remaining() / Float.BYTES];
            bytes.asFloatBuffer().get(out);
            return out;
        }
        ShortBuffer shorts = bytes.asShortBuffer();
        float[] out = new float[shorts.remaining()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Float.intBitsToFloat(shorts.get(i) << 16);
        }
        return out;
    }

    /** Encodes rows as {@code encoding}; UNSPECIFIED means F32. */
    static HiddenStates encode(float[] rows, HiddenEncoding encoding) {
        boolean bf16 = encoding == HiddenEncoding.HIDDEN_ENCODING_BF16;
        ByteBuffer out = ByteBuffer.allocate(rows.length * (bf16 ? Short.BYTES : Float.BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        if (bf16) {
            ShortBuffer shorts = out.asShortBuffer();
            for (float v : rows) {
                shorts.put(toBf16(v));
            }
        } else {
            out.asFloatBuffer().put(rows);
        }
        ByteString data = UnsafeByteOperations.unsafeWrap(out.array());   // the array is not touched again
        return HiddenStates.newBuilder()
                .setEncoding(bf16 ? HiddenEncoding.HIDDEN_ENCODING_BF16 : HiddenEncoding.HIDDEN_ENCODING_F32)
                .setData(data)
                .build();
    }

    /** float to bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN. */
    static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }
}
