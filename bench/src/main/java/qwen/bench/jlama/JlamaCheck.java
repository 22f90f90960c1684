// Correctness check of Jlama on a Qwen2 twin against a plain float32 Qwen-1 reference (QwenReference).
// Same command line as JlamaMain (see there), main class qwen.bench.jlama.JlamaCheck, arguments:
//   <qwen1-model-dir> | --random tiny|small     [--threads N]
// --random writes a RandomCheckpoint (tiny: d 64, 4 layers, vocab 512; small: d 256, 4 layers, 4 heads of 64,
// f 512, vocab 4096) to a temp dir. Prints one JSON line per check.
package qwen.bench.jlama;

import com.github.tjake.jlama.model.AbstractModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import qwen.service.model.DType;
import qwen.service.model.RandomCheckpoint;

/** Runs Jlama and the reference on the same ids and reports agreement of the top-1 tokens. */
public final class JlamaCheck {

    private JlamaCheck() {}

    public static void main(String[] args) throws Exception {
        Path qwenDir;
        Path tmpModel = null;
        int threads = 0;
        int i = 0;
        if (args.length >= 2 && args[0].equals("--random")) {
            RandomCheckpoint rc = switch (args[1]) {
                case "tiny" -> RandomCheckpoint.tiny();
                case "small" -> new RandomCheckpoint(256, 4, 4, 512, 4096, 1024, DType.BF16, 1, 7, null);
                default -> throw new IllegalArgumentException("--random tiny|small");
            };
            tmpModel = Files.createTempDirectory("qwen1-random-");
            qwenDir = rc.writeTo(tmpModel);
            i = 2;
        } else if (args.length >= 1) {
            qwenDir = Path.of(args[0]);
            i = 1;
        } else {
            System.err.println("usage: JlamaCheck <qwen1-model-dir> | --random tiny|small [--threads N]");
            System.exit(2);
            return;
        }
        for (; i < args.length; i++) {
            if (args[i].equals("--threads")) {
                threads = Integer.parseInt(args[++i]);
            } else {
                throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }

        Path twin = Files.createTempDirectory("jlama-twin-");
        try {
            Qwen2Twin.write(qwenDir, twin);
            QwenReference ref = new QwenReference(qwenDir);
            int vocab = ref.config().vocabSize();
            int[] prompt = JlamaMain.promptIds(16, vocab, 1);
            int[] teacher = JlamaMain.promptIds(64, vocab, 2);
            int steps = 32;

            AbstractModel m = JlamaRunner.load(twin, threads);
            try {
                int[] j1 = JlamaRunner.greedy(m, prompt, steps).tokens();
                int[] j2 = JlamaRunner.greedy(m, prompt, steps).tokens();
                int[] jTeacher = JlamaRunner.teacherForcedArgmax(m, teacher);
                int[] rGreedy = ref.greedy(prompt, steps);
                int[] rTeacher = ref.teacherForcedArgmax(teacher);

                int sameTeacher = 0;
                for (int k = 0; k < teacher.length; k++) {
                    sameTeacher += jTeacher[k] == rTeacher[k] ? 1 : 0;
                }
                int firstDiff = -1;
                for (int k = 0; k < j1.length; k++) {
                    if (j1[k] != rGreedy[k]) {
                        firstDiff = k;
                        break;
                    }
                }
                // Logit margin of the reference's top-1 over its top-2 where the engines disagree (teacher forced).
                StringBuilder margins = new StringBuilder("[");
                for (int k = 0; k < teacher.length; k++) {
                    if (jTeacher[k] != rTeacher[k]) {
                        float[] l = ref.lastLogits(Arrays.copyOf(teacher, k + 1));
                        float top = l[rTeacher[k]];
                        margins.append(margins.length() > 1 ? "," : "")
                                .append(String.format(java.util.Locale.ROOT, "{\"pos\":%d,\"refTop\":%d,\"jlama\":%d,"
                                        + "\"gap\":%.4f}", k, rTeacher[k], jTeacher[k], top - l[jTeacher[k]]));
                    }
                }
                margins.append("]");
                // Where the greedy runs part: the reference's logit gap between its pick and Jlama's pick.
                String greedyGap = "null";
                if (firstDiff >= 0) {
                    int[] prefix = Arrays.copyOf(prompt, prompt.length + firstDiff);
                    System.arraycopy(rGreedy, 0, prefix, prompt.length, firstDiff);
                    float[] l = ref.lastLogits(prefix);
                    float[] sorted = l.clone();
                    Arrays.sort(sorted);
                    greedyGap = String.format(java.util.Locale.ROOT,
                            "{\"refTop\":%.4f,\"refLogitOfJlamaPick\":%.4f,\"refSecond\":%.4f,\"logitSpread\":%.4f}",
                            l[rGreedy[firstDiff]], l[j1[firstDiff]], sorted[sorted.length - 2],
                            sorted[sorted.length - 1] - sorted[0]);
                }
                System.out.println("{\"model\":\"" + qwenDir + "\""
                        + ",\"workingDType\":\"" + m.getWorkingDType() + "\""
                        + ",\"workingQType\":\"" + JlamaRunner.workingQType(m) + "\""
                        + ",\"jlamaDeterministic\":" + Arrays.equals(j1, j2)
                        + ",\"greedyEqualsReference\":" + Arrays.equals(j1, rGreedy)
                        + ",\"greedyFirstDiff\":" + firstDiff
                        + ",\"greedyDiffGap\":" + greedyGap
                        + ",\"teacherForcedTop1Agree\":\"" + sameTeacher + "/" + teacher.length + "\""
                        + ",\"disagreements\":" + margins
                        + ",\"jlamaGreedy\":" + Arrays.toString(j1).replace(" ", "")
                        + ",\"referenceGreedy\":" + Arrays.toString(rGreedy).replace(" ", "")
                        + "}");
            } finally {
                m.close();
            }
        } finally {
            JlamaMain.deleteTree(twin);
            if (tmpModel != null) {
                JlamaMain.deleteTree(tmpModel);
            }
        }
    }
}
