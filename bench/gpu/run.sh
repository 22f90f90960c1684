#!/usr/bin/env bash
# The GPU benchmark on a machine with an NVIDIA GPU and no Java: unpacks the bundle made by
# bench/gpu/pack.sh (a jlinked Java 25, the TornadoVM SDK's PTX parts, the service classes), runs
# the TornadoVM backend's device tests there (kernels against their references, whole small models
# against the CPU backend; each test class in its own JVM, the generated PTX kept in
# device-kernels.ptx.xz; unless QWEN_GPU_TESTS=0), then qwen.service.backend.tornado.GpuBench at
# Qwen-1.8B shapes (QWEN_GPU_PLAIN=false leaves out its plain-launch part, the per-kernel profile:
# about 50 s of device time), then, on the same GPU, the Hugging Face transformers baseline
# (hf_anchor.py) when python3 has torch and transformers, unless QWEN_HF=0, then the tensor-core
# probe (unless QWEN_TC_PROBE=0).
#   bench/gpu/run.sh BUNDLE_DIR [RESULTS_DIR]
set -euo pipefail
bundle=$(cd "${1:?usage: run.sh BUNDLE_DIR [RESULTS_DIR]}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
results=${2:-${OUT:-/tmp/qwen-gpu-results}}
work=/tmp/qwen-gpu
mkdir -p "$work" "$results"
tar -xJf "$bundle/gpu-runtime.tar.xz" -C "$work"
if [ -d "$bundle/app" ]; then cp "$bundle"/app/*.jar "$work/app/"; fi    # newer service classes than the archive's
sed "s#@TVM@#$work/tvm#g" "$work/tvm/tornado-argfile.in" > "$work/tvm/tornado-argfile"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$results/gpu.txt"
date -u +%FT%TZ >> "$results/gpu.txt"

# GPU memory high-water mark while our benchmark runs.
( while sleep 0.5; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; done ) > "$work/mem.txt" 2>/dev/null &
sampler=$!
# A PTX library linked against a stub libcuda may not name libcuda as a dependency: preload the driver's.
LD_PRELOAD=${LD_PRELOAD:-$(ldconfig -p | awk '/libcuda.so.1 /{print $NF; exit}')}
export LD_PRELOAD
cd "$work"
set +e
tests=0
launcher=$(ls "$work"/app/junit-platform-console-standalone-*.jar 2>/dev/null | head -1)
if [ "${QWEN_GPU_TESTS:-1}" != 0 ] && [ -n "$launcher" ] && [ -f "$work/app/device-tests.txt" ]; then
  # One JVM per test class: a kernel that faults (CUDA error 700) poisons its context, and with it
  # every later test of that JVM. The generated PTX of every test kernel is kept beside the logs.
  rm -f "$work/device-kernels.ptx" "$results/gpu-tests.log"
  for cls in $(cat "$work/app/device-tests.txt"); do
    log="$work/gpu-tests-${cls##*.}.log"
    timeout "${QWEN_GPU_TESTS_TIMEOUT:-300}" "$work/jre/bin/java" @"$work/tvm/tornado-argfile" @"$root/service/tornado.args" \
      --add-modules jdk.incubator.vector -Dtornado.printKernel=True -Dtornado.print.kernel.dir="$work/device-kernels.ptx" \
      -cp "$work/app/*" org.junit.platform.console.ConsoleLauncher execute --select-class="$cls" \
      --details=tree --disable-banner > "$log" 2>&1
    st=$?
    [ "$st" = 0 ] || tests=$st
    echo "${cls##*.}: $(grep -E 'tests (successful|failed) ' "$log" | tr -s ' []' ' ' | tr '\n' ' ')exit status $st"
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '✘ .' | head -20        # each failed test with its message
    cat "$log" >> "$results/gpu-tests.log"
  done
  xz -c "$work/device-kernels.ptx" > "$results/device-kernels.ptx.xz" 2>/dev/null
  echo "device tests exit status $tests"
fi
# The shard's TornadoVM options (service/tornado.args); a JFR recording of batch-1 decoding lands in
# the results.
timeout "${QWEN_GPU_TIMEOUT:-420}" "$work/jre/bin/java" @"$work/tvm/tornado-argfile" @"$root/service/tornado.args" \
  --add-modules jdk.incubator.vector -Dtornado.device.memory=30GB \
  -cp "$work/app/*" qwen.service.backend.tornado.GpuBench "" 4096 "$results/decode-b1.jfr" "${QWEN_GPU_PLAIN:-true}" \
  2>&1 | tee "$results/qwen-gpu.log"
status=${PIPESTATUS[0]}
kill "$sampler" 2>/dev/null || true
echo "{\"figure\":\"qwen_peak_gpu_memory_mib\",\"value\":$(sort -n "$work/mem.txt" | tail -1)}" | tee -a "$results/qwen-gpu.log"
echo "qwen benchmark exit status $status"
if [ "${QWEN_HF:-1}" != 0 ] && [ -f "$bundle/hf_anchor.py" ] && python3 -c 'import torch, transformers' 2>/dev/null; then
  PYTHONUNBUFFERED=1 timeout "${QWEN_HF_TIMEOUT:-240}" python3 "$bundle/hf_anchor.py" 2>&1 | tee "$results/hf-anchor.log"
fi
# Tensor cores through TornadoVM's MMA intrinsics on the packed weights, beside the f32 tiled kernel
# (qwen.service.backend.tornado.TensorCoreProbe; unless QWEN_TC_PROBE=0).
if [ "${QWEN_TC_PROBE:-1}" != 0 ]; then
  timeout "${QWEN_TC_PROBE_TIMEOUT:-180}" "$work/jre/bin/java" @"$work/tvm/tornado-argfile" @"$root/service/tornado.args" \
    --add-modules jdk.incubator.vector -Dtornado.device.memory=30GB -cp "$work/app/*" \
    qwen.service.backend.tornado.TensorCoreProbe 2>&1 | grep -v '^WARNING' | tee "$results/tensor-cores.log"
fi
set -e
[ "$status" = 0 ] || exit "$status"
exit "$tests"
