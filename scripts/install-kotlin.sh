#!/usr/bin/env bash
# Installs the Kotlin toolchain for the FieldCast Kotlin bindings and the Android shell's JVM tests
# into $FIELDCAST_TOOLS (default <repo>/.tools, git-ignored); safe to run again, and quick when all
# is present. Writes $FIELDCAST_TOOLS/kotlin.env (KEY=value lines) for make and scripts to source:
#
#   KOTLIN_HOME, KOTLIN_LIB   the npm package kotlin-compiler and its lib/ (kotlin-stdlib, kotlin-test,
#                             kotlin-test-junit; its kotlinx-coroutines-core-jvm.jar is the compiler's
#                             own 1.8.0, so coroutines come from Maven Central below)
#   KOTLINC                   a kotlinc wrapper (.tools/bin/kotlinc) that starts about twice as fast
#   KOTLINC_PLAIN             the package's own bin/kotlinc launcher
#   KOTLIN_STDLIB_CP          kotlin-stdlib.jar (+ annotations-13.0.jar) to put on `java -cp`
#   KOTLIN_TEST_CP            kotlin-test.jar:kotlin-test-junit.jar (kotlin.test asserts on JUnit 4)
#   JNA_JAR                   net.java.dev.jna:jna (uniffi's Kotlin bindings load the Rust library with it)
#   JUNIT_CP                  junit 4.13.2 + hamcrest-core 1.3 (runner: org.junit.runner.JUnitCore)
#   COROUTINES_CP             kotlinx-coroutines-core-jvm + kotlinx-coroutines-test-jvm
#   COROUTINES_ANDROID_JAR    kotlinx-coroutines-android (Dispatchers.Main; works under Robolectric)
#   ANDROID_ALL_JAR           the Android 14 (API 34) framework classes: compile against it, and keep
#                             it on the runtime classpath of Robolectric tests too
#   ROBOLECTRIC_CP            Robolectric and its runtime dependencies (+ androidx.test core/monitor)
#   ROBOLECTRIC_DEPS_DIR      holds android-all-instrumented-*.jar; run tests with
#                             -Drobolectric.offline=true -Drobolectric.dependency.dir=$ROBOLECTRIC_DEPS_DIR
#
# Values hold no spaces or quotes, so the file works both with `. kotlin.env` and make's `include`.
#
# Needs java (17+), mvn and npm; installs Debian's packages for what is missing.
set -euo pipefail

KOTLIN_VERSION=2.4.20
JNA_VERSION=5.19.1
JUNIT_VERSION=4.13.2
HAMCREST_VERSION=1.3
COROUTINES_VERSION=1.10.2
ROBOLECTRIC_VERSION=4.17
ANDROIDX_TEST_CORE_VERSION=1.7.0
# API 34 as Robolectric 4.17 names it (DefaultSdkProvider); "-i7" is its pre-instrumentation revision.
ANDROID_ALL_VERSION=14-robolectric-10818077
ANDROID_ALL_INSTRUMENTED_VERSION=${ANDROID_ALL_VERSION}-i7

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${FIELDCAST_TOOLS:-$repo/.tools}"
mkdir -p "$tools"
tools="$(cd "$tools" && pwd)"

die() {
  echo "install-kotlin: $*" >&2
  exit 1
}

# --- system tools --------------------------------------------------------------------------
need_pkgs=()
command -v java >/dev/null 2>&1 || need_pkgs+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_pkgs+=(maven)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
command -v unzip >/dev/null 2>&1 || need_pkgs+=(unzip)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "install-kotlin: installing ${need_pkgs[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" \
    || die "apt-get install ${need_pkgs[*]} failed"
fi
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
[ "${java_major:-0}" -ge 17 ] || die "java 17 or newer is needed (found: ${java_major:-none})"

# --- kotlinc (npm) -------------------------------------------------------------------------
KOTLIN_HOME="$tools/kotlin/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
if [ ! -x "$KOTLINC" ] || [ "$(cat "$KOTLIN_HOME/build.txt" 2>/dev/null)" != "$KOTLIN_VERSION" ]; then
  echo "install-kotlin: kotlin-compiler@$KOTLIN_VERSION from npm"
  mkdir -p "$tools/kotlin"
  npm install --prefix "$tools/kotlin" --no-audit --no-fund --no-save --loglevel=error \
    "kotlin-compiler@$KOTLIN_VERSION" >"$tools/kotlin/npm.log" 2>&1 \
    || { tail -20 "$tools/kotlin/npm.log" >&2; die "npm install kotlin-compiler@$KOTLIN_VERSION failed (log: $tools/kotlin/npm.log)"; }
  [ -f "$KOTLINC" ] || die "kotlinc not found at $KOTLINC after npm install"
  chmod +x "$KOTLIN_HOME"/bin/*
fi
for j in kotlin-stdlib.jar kotlin-test.jar kotlin-test-junit.jar annotations-13.0.jar; do
  [ -f "$KOTLIN_HOME/lib/$j" ] || die "$KOTLIN_HOME/lib/$j is missing from kotlin-compiler@$KOTLIN_VERSION"
done

# --- a quicker kotlinc ---------------------------------------------------------------------
# The stock launcher starts the compiler through its preloader on the default JIT: ~7 s for hello
# world on 2 cores. Started straight on the JVM with an AppCDS archive of the compiler's classes and
# the C1 JIT only, the same compile takes about half as long. The archive belongs to one JVM build
# and one kotlin-compiler.jar; the wrapper runs without it (slower) when it is missing or stale.
KOTLINC_PLAIN="$KOTLINC"
KOTLINC="$tools/bin/kotlinc"
jsa="$tools/kotlin/kotlinc-$KOTLIN_VERSION.jsa"
compiler_jar="$KOTLIN_HOME/lib/kotlin-compiler.jar"
java_id="$(java -version 2>&1 | tr '\n' ' ') $KOTLIN_HOME"
if [ ! -s "$jsa" ] || [ "$compiler_jar" -nt "$jsa" ] || [ "$(cat "$jsa.java" 2>/dev/null)" != "$java_id" ]; then
  echo "install-kotlin: building the class-data archive for kotlinc (once, ~20 s)"
  rm -f "$jsa" "$jsa.java"
  cds_dir="$(mktemp -d)"
  cat >"$cds_dir/Warmup.kt" <<'KT'
package warmup

import kotlin.coroutines.resume
import kotlin.coroutines.suspendCoroutine

interface Listener { fun onEvent(name: String, value: Long) }

data class Sample(val id: Int, val tags: List<String> = emptyList()) {
    companion object { const val MAX = 4 }
}

sealed class State { object Idle : State(); data class Live(val bitrate: Long) : State() }

enum class Kind { AUDIO, VIDEO }

suspend fun bump(v: Int): Int = suspendCoroutine { it.resume(v + 1) }

fun describe(s: State): String = when (s) {
    State.Idle -> "idle"
    is State.Live -> "live ${s.bitrate}"
}

fun main() {
    val xs = (1..Sample.MAX).map { Sample(it, listOf("t$it")) }.filter { it.id % 2 == 0 }
    val l = object : Listener { override fun onEvent(name: String, value: Long) = println("$name=$value") }
    xs.forEach { l.onEvent(describe(State.Live(it.id.toLong())), Kind.VIDEO.ordinal.toLong()) }
    println(buildString { append(xs.joinToString()) })
}
KT
  if java -Xmx1g -XX:TieredStopAtLevel=1 -XX:ArchiveClassesAtExit="$jsa" -Xlog:cds=off -Xlog:cds+dynamic=off \
      -cp "$compiler_jar" org.jetbrains.kotlin.cli.jvm.K2JVMCompiler -kotlin-home "$KOTLIN_HOME" \
      "$cds_dir/Warmup.kt" -d "$cds_dir/out" >"$cds_dir/log" 2>&1 && [ -s "$jsa" ]; then
    echo "$java_id" >"$jsa.java"
  else
    rm -f "$jsa"
    echo "install-kotlin: warning: no class-data archive (kotlinc works, only slower):" >&2
    tail -5 "$cds_dir/log" >&2
  fi
  rm -rf "$cds_dir"
fi
# Pinned to this java: the archive is only valid for it. Java 24+ wants the flags the stock launcher adds.
java_bin="$(readlink -f "$(command -v java)")"
java_flags="-Xmx2g -XX:TieredStopAtLevel=1"
[ "$java_major" -lt 24 ] || java_flags="$java_flags --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow"
mkdir -p "$tools/bin"
cat >"$KOTLINC.tmp" <<SH
#!/usr/bin/env bash
# Generated by scripts/install-kotlin.sh: kotlinc $KOTLIN_VERSION started straight on the JVM, with
# the class-data archive when it exists. KOTLINC_JAVA_OPTS replaces the JVM options (default:
# $java_flags). Arguments as for kotlinc, except its -J and -D options.
home='$KOTLIN_HOME'
jsa='$jsa'
share=()
[ -s "\$jsa" ] && share=(-XX:SharedArchiveFile="\$jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
exec '$java_bin' \${KOTLINC_JAVA_OPTS:-$java_flags} "\${share[@]}" \\
  -cp "\$home/lib/kotlin-compiler.jar" org.jetbrains.kotlin.cli.jvm.K2JVMCompiler -kotlin-home "\$home" "\$@"
SH
chmod +x "$KOTLINC.tmp"
mv "$KOTLINC.tmp" "$KOTLINC"

# --- jars from Maven Central ---------------------------------------------------------------
jars="$tools/jars"
robo_lib="$tools/robolectric/lib"
robo_deps="$tools/robolectric/deps"
stamp="$tools/maven/done"
want_stamp="jna=$JNA_VERSION junit=$JUNIT_VERSION hamcrest=$HAMCREST_VERSION coroutines(core,test,android)=$COROUTINES_VERSION robolectric=$ROBOLECTRIC_VERSION androidx-test-core=$ANDROIDX_TEST_CORE_VERSION android-all=$ANDROID_ALL_INSTRUMENTED_VERSION"

JNA_JAR="$jars/jna-$JNA_VERSION.jar"
JUNIT_CP="$jars/junit-$JUNIT_VERSION.jar:$jars/hamcrest-core-$HAMCREST_VERSION.jar"
COROUTINES_CP="$jars/kotlinx-coroutines-core-jvm-$COROUTINES_VERSION.jar:$jars/kotlinx-coroutines-test-jvm-$COROUTINES_VERSION.jar"
COROUTINES_ANDROID_JAR="$jars/kotlinx-coroutines-android-$COROUTINES_VERSION.jar"
ANDROID_ALL_JAR="$jars/android-all-$ANDROID_ALL_VERSION.jar"
instrumented_jar="$robo_deps/android-all-instrumented-$ANDROID_ALL_INSTRUMENTED_VERSION.jar"

all_present() {
  [ "$(cat "$stamp" 2>/dev/null)" = "$want_stamp" ] || return 1
  local f
  for f in $JNA_JAR ${JUNIT_CP//:/ } ${COROUTINES_CP//:/ } $COROUTINES_ANDROID_JAR $ANDROID_ALL_JAR $instrumented_jar; do
    [ -s "$f" ] || return 1
  done
  [ -s "$robo_lib/org.robolectric.robolectric-$ROBOLECTRIC_VERSION.jar" ] || return 1
}

if ! all_present; then
  echo "install-kotlin: jars from Maven Central (android-all is ~300 MB on first download)"
  rm -f "$stamp"
  rm -rf "$robo_lib"
  mkdir -p "$tools/maven" "$jars" "$robo_lib" "$robo_deps"
  item() { # groupId artifactId version outputDirectory
    printf '              <artifactItem><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version><outputDirectory>%s</outputDirectory></artifactItem>\n' "$@"
  }
  {
    cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/install-kotlin.sh; only used to fetch jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.fieldcast</groupId>
  <artifactId>kotlin-tools</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.robolectric</groupId><artifactId>robolectric</artifactId><version>$ROBOLECTRIC_VERSION</version>
    </dependency>
    <!-- ApplicationProvider; its pom names monitor etc. without type aar, which Maven cannot
         resolve, and Robolectric brings monitor already. -->
    <dependency>
      <groupId>androidx.test</groupId><artifactId>core</artifactId><version>$ANDROIDX_TEST_CORE_VERSION</version><type>aar</type>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
        <executions>
          <execution>
            <id>jars</id>
            <configuration>
              <overWriteIfNewer>true</overWriteIfNewer>
              <artifactItems>
EOF
    item net.java.dev.jna jna "$JNA_VERSION" "$jars"
    item junit junit "$JUNIT_VERSION" "$jars"
    item org.hamcrest hamcrest-core "$HAMCREST_VERSION" "$jars"
    item org.jetbrains.kotlinx kotlinx-coroutines-core-jvm "$COROUTINES_VERSION" "$jars"
    item org.jetbrains.kotlinx kotlinx-coroutines-test-jvm "$COROUTINES_VERSION" "$jars"
    item org.jetbrains.kotlinx kotlinx-coroutines-android "$COROUTINES_VERSION" "$jars"
    item org.robolectric android-all "$ANDROID_ALL_VERSION" "$jars"
    item org.robolectric android-all-instrumented "$ANDROID_ALL_INSTRUMENTED_VERSION" "$robo_deps"
    cat <<EOF
              </artifactItems>
            </configuration>
          </execution>
          <execution>
            <id>robolectric</id>
            <configuration>
              <outputDirectory>$robo_lib</outputDirectory>
              <includeScope>runtime</includeScope>
              <prependGroupId>true</prependGroupId>
            </configuration>
          </execution>
        </executions>
      </plugin>
    </plugins>
  </build>
</project>
EOF
  } >"$tools/maven/pom.xml"
  log="$tools/maven/mvn.log"
  if ! mvn -B -Dstyle.color=never -f "$tools/maven/pom.xml" \
      dependency:copy@jars dependency:copy-dependencies@robolectric >"$log" 2>&1; then
    grep -E '^\[ERROR\]' "$log" | head -10 >&2 || tail -20 "$log" >&2
    die "downloading jars from Maven Central failed (log: $log)"
  fi
  # Robolectric's androidx.test artifacts are Android libraries (.aar): keep their classes.jar.
  for aar in "$robo_lib"/*.aar; do
    [ -e "$aar" ] || continue
    unzip -p "$aar" classes.jar >"${aar%.aar}.jar" || die "no classes.jar in $aar"
    rm -f "$aar"
  done
  all_present_files_ok=1
  for f in $JNA_JAR ${JUNIT_CP//:/ } ${COROUTINES_CP//:/ } $COROUTINES_ANDROID_JAR $ANDROID_ALL_JAR $instrumented_jar \
      "$robo_lib/org.robolectric.robolectric-$ROBOLECTRIC_VERSION.jar"; do
    [ -s "$f" ] || { echo "install-kotlin: missing after download: $f" >&2; all_present_files_ok=0; }
  done
  [ "$all_present_files_ok" = 1 ] || die "some jars are missing after mvn (log: $log)"
  echo "$want_stamp" >"$stamp"
fi

ROBOLECTRIC_CP="$(find "$robo_lib" -maxdepth 1 -name '*.jar' | LC_ALL=C sort | paste -sd: -)"
[ -n "$ROBOLECTRIC_CP" ] || die "no jars in $robo_lib"

# --- kotlin.env ----------------------------------------------------------------------------
env_file="$tools/kotlin.env"
cat >"$env_file.tmp" <<EOF
FIELDCAST_TOOLS=$tools
KOTLIN_VERSION=$KOTLIN_VERSION
KOTLIN_HOME=$KOTLIN_HOME
KOTLIN_LIB=$KOTLIN_HOME/lib
KOTLINC=$KOTLINC
KOTLINC_PLAIN=$KOTLINC_PLAIN
KOTLIN_STDLIB_CP=$KOTLIN_HOME/lib/kotlin-stdlib.jar:$KOTLIN_HOME/lib/annotations-13.0.jar
KOTLIN_TEST_CP=$KOTLIN_HOME/lib/kotlin-test.jar:$KOTLIN_HOME/lib/kotlin-test-junit.jar
JNA_JAR=$JNA_JAR
JUNIT_CP=$JUNIT_CP
COROUTINES_CP=$COROUTINES_CP
COROUTINES_ANDROID_JAR=$COROUTINES_ANDROID_JAR
ANDROID_ALL_JAR=$ANDROID_ALL_JAR
ROBOLECTRIC_CP=$ROBOLECTRIC_CP
ROBOLECTRIC_DEPS_DIR=$robo_deps
EOF
mv "$env_file.tmp" "$env_file"

echo "install-kotlin: ready ($env_file)"
echo "  kotlinc          $KOTLINC ($KOTLIN_VERSION; stock launcher: $KOTLINC_PLAIN)"
echo "  kotlin lib       $KOTLIN_HOME/lib"
echo "  jna              $JNA_JAR"
echo "  junit            $JUNIT_CP"
echo "  coroutines       $COROUTINES_CP"
echo "  android-all      $ANDROID_ALL_JAR"
echo "  robolectric      $robo_lib ($ROBOLECTRIC_VERSION, $(find "$robo_lib" -maxdepth 1 -name '*.jar' | wc -l) jars)"
echo "  robolectric deps $robo_deps"
