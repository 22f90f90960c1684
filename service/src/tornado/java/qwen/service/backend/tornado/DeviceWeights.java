package qwen.service.backend.tornado;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import qwen.service.model.LayerWeights;
import qwen.service.model.Matrix;
import qwen.service.model.QuantBlocks;
import qwen.service.model.ShardWeights;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.LongArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * The shard's weights in the form the device computes with: every matrix as fp16 (converted once
 * from the checkpoint's bf16, f16 or f32; bf16 values within fp16's range convert exactly), the
 * linear layers' packed four to a long ({@link Fp16}), the embedding one to a short (it is read a
 * row at a time); norms and the bias as f32. Uploaded with the first step and resident from then
 * on.
 *
 * @param wte embedding [vocab, d]; null unless the shard holds it
 * @param layers the blocks, in order
 * @param lnF final norm [d]; null unless the shard holds the head
 * @param lmHead head [vocab, d]; null unless the shard holds the head
 */
record DeviceWeights(ShortArray wte, List<Layer> layers, FloatArray lnF, LongArray lmHead) {

    /** One block's device arrays, named as in the checkpoint. */
    record Layer(
            FloatArray ln1,            // [d]
            LongArray cAttn,           // [3d, d]
            FloatArray cAttnBias,      // [3d]
            LongArray attnCProj,       // [d, d]
            FloatArray ln2,            // [d]
            LongArray w1,              // [f, d]
            LongArray w2,              // [f, d]
            LongArray mlpCProj) {      // [d, f]
    }

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static DeviceWeights of(ShardWeights w) {
        List<Layer> layers = new ArrayList<>();
        for (LayerWeights l : w.layers()) {
            layers.add(new Layer(floats(l.ln1()), packed(l.cAttn()), floats(l.cAttnBias()), packed(l.attnCProj()),
                    floats(l.ln2()), packed(l.w1()), packed(l.w2()), packed(l.mlpCProj())));
        }
        return new DeviceWeights(
                w.wte() == null ? null : half(w.wte()),
                List.copyOf(layers),
                w.lnF() == null ? null : floats(w.lnF()),
                w.lmHead() == null ? null : packed(w.lmHead()));
    }

    /** Bytes these arrays take on the device. */
    long bytes() {
        long total = (wte == null ? 0 : wte.getNumBytesOfSegment()) + (lmHead == null ? 0 : lmHead.getNumBytesOfSegment())
                + (lnF == null ? 0 : lnF.getNumBytesOfSegment());
        for (Layer l : layers) {
            total += l.ln1.getNumBytesOfSegment() + l.cAttn.getNumBytesOfSegment() + l.cAttnBias.getNumBytesOfSegment()
                    + l.attnCProj.getNumBytesOfSegment() + l.ln2.getNumBytesOfSegment() + l.w1.getNumBytesOfSegment()
                    + l.w2.getNumBytesOfSegment() + l.mlpCProj.getNumBytesOfSegment();
        }
        return total;
    }

    /** Bytes of fp16 device weights a shard of these weights needs, before uploading anything. */
    static long bytesFor(ShardWeights w) {
        long total = halfBytes(w.wte()) + halfBytes(w.lmHead());
        for (LayerWeights l : w.layers()) {
            total += halfBytes(l.cAttn()) + halfBytes(l.attnCProj()) + halfBytes(l.w1()) + halfBytes(l.w2())
                    + halfBytes(l.mlpCProj());
        }
        return total;
    }

    private static long halfBytes(Matrix m) {
        return m == null ? 0 : (long) m.rows() * m.cols() * 2;
    }

    private static FloatArray floats(float[] v) {
        return FloatArray.fromArray(v);
    }

    /** The matrix as fp16, rows converted in parallel; fails naming the tensor when a value overflows fp16. */
    private static ShortArray half(Matrix m) {
        long n = (long) m.rows() * m.cols();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalStateException(m.name() + ": " + n + " elements exceed a device array's int index");
        }
        ShortArray out = new ShortArray((int) n);
        int cols = m.cols();
        IntStream.range(0, m.rows()).parallel().forEach(r -> {
            for (int c = 0; c < cols; c++) {
                out.set(r * cols + c, fp16(m, r, c));
            }
        });
        return out;
    }

    /** The matrix as fp16 packed four to a long ({@link Fp16}), rows converted in parallel. */
    private static LongArray packed(Matrix m) {
        if (m.cols() % Fp16.PER_LONG != 0) {
            throw new IllegalStateException(m.name() + " has " + m.cols() + " columns; the GPU backend packs weights "
                    + Fp16.PER_LONG + " to a 64-bit word and needs hidden_size and the MLP width to be multiples of "
                    + Fp16.PER_LONG);
        }
        long n = (long) m.rows() * Fp16.longsPerRow(m.cols());
        if (n > Integer.MAX_VALUE) {
            throw new IllegalStateException(m.name() + ": " + n + " words exceed a device array's int index");
        }
        LongArray out = new LongArray((int) n);
        int blocks = (m.rows() + 63) / 64;
        IntStream.range(0, blocks).parallel().forEach(b -> Fp16.pack((r, c) -> fp16(m, r, c), m.cols(), b * 64,
                Math.min(m.rows(), b * 64 + 64), out));
        return out;
    }

    /** Element [r, c] as fp16 bits; fails naming the tensor when the value overflows fp16. */
    private static short fp16(Matrix m, int r, int c) {
        float v = element(m, (long) r * m.cols() + c);
        short h = Float.floatToFloat16(v);
        if (Float.isInfinite(Float.float16ToFloat(h)) && !Float.isInfinite(v)) {
            throw new IllegalStateException(m.name() + " [" + r + ", " + c + "] = " + v
                    + " is outside fp16's range, which the GPU backend stores weights in");
        }
        return h;
    }

    private static float element(Matrix m, long index) {
        return switch (m.dtype()) {
            case F32 -> m.data().getAtIndex(LE_FLOAT, index);
            case F16 -> Float.float16ToFloat(m.data().getAtIndex(LE_SHORT, index));
            case BF16 -> Float.intBitsToFloat((m.data().getAtIndex(LE_SHORT, index) & 0xFFFF) << 16);
            default -> QuantBlocks.element(m, (int) (index / m.cols()), (int) (index % m.cols()));  // blocks, decoded
        };
    }
}
