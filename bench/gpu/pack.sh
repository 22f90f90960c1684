#!/usr/bin/env bash
# Packs what the GPU benchmark needs on a machine with an NVIDIA GPU but no Java into BUNDLE_DIR
# (about 35 MB): a Java 25 runtime made with jlink, the PTX parts of an installed TornadoVM SDK,
# the service classes (built with that SDK) with their few runtime libraries, the backend's device
# tests and a JUnit console launcher, and the Hugging Face baseline script. bench/gpu/run.sh BUNDLE_DIR runs it there.
#   TORNADOVM_HOME=/path/to/sdk bench/gpu/pack.sh [BUNDLE_DIR]     (default .gpu)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$ROOT/.gpu}" && cd "${1:-$ROOT/.gpu}" && pwd)
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export JAVA_HOME
[ -x "$JAVA_HOME/bin/jlink" ] || { echo "pack.sh: no jlink in JAVA_HOME=$JAVA_HOME (Temurin 25 needed)" >&2; exit 1; }
tvm=${TORNADOVM_HOME:?pack.sh: set TORNADOVM_HOME to a TornadoVM SDK built with the PTX backend}
[ -f "$tvm/lib/libtornado-ptx.so" ] || { echo "pack.sh: $tvm has no PTX backend (lib/libtornado-ptx.so)" >&2; exit 1; }
version=$(ls "$tvm"/share/java/tornado/tornado-api-*.jar | sed 's#.*/tornado-api-\(.*\)\.jar#\1#')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app"

# The service classes with the TornadoVM backend compiled in, the libraries the benchmark loads, and
# the backend's device tests with a JUnit console launcher, so that run.sh checks every kernel on the
# GPU before it times them.
(cd "$ROOT" && TORNADOVM_HOME=$tvm ./mvnw -q install -DskipTests -pl service -am >&2)
(cd "$ROOT" && ./mvnw -q -pl service dependency:build-classpath -Dmdep.outputFile="$work/test-classpath.txt" \
    -Dmdep.includeScope=test >&2)
junit=$(tr ':' '\n' < "$work/test-classpath.txt" | sed -n 's#.*/junit-jupiter-api-\([0-9][^/]*\)\.jar$#\1#p' | head -1)
[ -n "$junit" ] || { echo "pack.sh: no junit-jupiter-api on the service's test classpath" >&2; exit 1; }
(cd "$ROOT" && ./mvnw -q dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$junit" \
    -DoutputDirectory="$work/app" >&2)
(cd "$ROOT" && TORNADOVM_HOME=$tvm ./mvnw -q -pl service dependency:build-classpath \
    -Dmdep.outputFile="$work/classpath.txt" -Dmdep.includeScope=runtime >&2)
"$JAVA_HOME/bin/jar" cf "$work/app/qwen-service.jar" -C "$ROOT/service/target/classes" .
"$JAVA_HOME/bin/jar" cf "$work/app/qwen-service-tests.jar" -C "$ROOT/service/target/test-classes" .
# The device test classes, each run in its own JVM by run.sh; GpuBenchTest (the benchmark on a small
# model) is left out there, where the benchmark itself runs right after.
(cd "$ROOT/service/target/test-classes" && find qwen/service/backend/tornado -name '*Test.class' | sort \
    | sed 's#/#.#g; s#\.class$##' | grep -v '\.GpuBenchTest$') > "$work/app/device-tests.txt"
tr ':' '\n' < "$work/classpath.txt" | grep '/jackson-' | xargs -I{} cp {} "$work/app/"

# A runtime with the modules TornadoVM's PTX backend and the engine use, JFR for the benchmark's
# recording and the zip file system JUnit scans the tests' jar with; stored uncompressed so that xz compresses the whole bundle better.
"$JAVA_HOME/bin/jlink" --output "$work/jre" --compress=zip-0 --no-header-files --no-man-pages --strip-debug \
  --add-modules java.base,jdk.internal.vm.ci,java.logging,java.management,jdk.management,jdk.unsupported,java.desktop,java.sql,jdk.incubator.vector,jdk.jfr,jdk.zipfs

# The SDK's PTX parts and its JVM flags, with the SDK's path left as @TVM@ for run.sh to fill in.
mkdir -p "$work/tvm/share/java/tornado" "$work/tvm/share/java/graalJars" "$work/tvm/lib"
cp -r "$tvm/etc" "$work/tvm/"
for jar in compiler truffle-compiler collections word; do       # the Graal compiler; no polyglot or Truffle API
  cp "$tvm"/share/java/graalJars/$jar-[0-9]*.jar "$work/tvm/share/java/graalJars/"
done
cp "$tvm/lib/libtornado-ptx.so" "$work/tvm/lib/"
for jar in tornado-api tornado-runtime tornado-annotation tornado-drivers-common tornado-drivers-ptx; do
  cp "$tvm/share/java/tornado/$jar-$version.jar" "$work/tvm/share/java/tornado/"
done
cp "$tvm/share/java/tornado/tornado-drivers-ptx-jni-$version-libs.jar" "$work/tvm/share/java/tornado/"
for lib in asm collections word commons-math3 snmp4j; do
  cp "$tvm"/share/java/tornado/$lib-*.jar "$work/tvm/share/java/tornado/"
done
sed -e "s#$tvm#@TVM@#g" -e 's/,tornado\.drivers\.opencl//g' -e 's/tornado\.drivers\.opencl,//g' \
  -e '/tornado\.drivers\.opencl/d' "$tvm/tornado-argfile" > "$work/tvm/tornado-argfile.in"

tar -cJf "$out/gpu-runtime.tar.xz" -C "$work" jre tvm app
rm -rf "$out/app"
if [ -f "$ROOT/../shared/bench/hf_anchor.py" ]; then
  cp "$ROOT/../shared/bench/hf_anchor.py" "$out/"
fi
echo "pack.sh: $(du -h "$out/gpu-runtime.tar.xz" | cut -f1) in $out; on the GPU machine: bench/gpu/run.sh $out" >&2
