package qwen.service.grpc;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import qwen.proto.shard.v1.HiddenEncoding;
import qwen.proto.shard.v1.HiddenStates;

/** Hidden rows as shard.proto lays them out, written independently of the service's HiddenCodec. */
final class Rows {

    private Rows() {
    }

    static HiddenStates f32(float[] rows) {
        ByteBuffer b = ByteBuffer.allocate(rows.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : rows) {
            b.putFloat(v);
        }
        return HiddenStates.newBuilder().setEncoding(HiddenEncoding.HIDDEN_ENCODING_F32).setData(ByteString.copyFrom(b.array())).build();
    }

    static HiddenStates bf16(float[] rows) {
        ByteBuffer b = ByteBuffer.allocate(rows.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : rows) {
            b.putShort((short) (Float.floatToIntBits(roundToBf16(v)) >>> 16));
        }
        return HiddenStates.newBuilder().setEncoding(HiddenEncoding.HIDDEN_ENCODING_BF16).setData(ByteString.copyFrom(b.array())).build();
    }

    /** The float nearest to v with a 7-bit mantissa, ties to even (finite v). */
    static float roundToBf16(float v) {
        int bits = Float.floatToIntBits(v);
        int lower = bits & 0xffff;
        int upper = bits >>> 16;
        if (lower > 0x8000 || (lower == 0x8000 && (upper & 1) == 1)) {
            upper++;
        }
        return Float.intBitsToFloat(upper << 16);
    }

    static float[] decode(HiddenStates hidden) {
        ByteBuffer b = hidden.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        boolean f32 = hidden.getEncoding() == HiddenEncoding.HIDDEN_ENCODING_F32;
        float[] out = new float[b.remaining() / (f32 ? 4 : 2)];
        for (int i = 0; i < out.length; i++) {
            out[i] = f32 ? b.getFloat() : Float.intBitsToFloat(b.getShort() << 16);
        }
        return out;
    }
}
