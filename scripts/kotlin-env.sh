# Sourced (from the repository root) by the Kotlin scripts: installs the Kotlin toolchain when it is
# missing, then loads $FIELDCAST_TOOLS/kotlin.env (KOTLINC, JNA_JAR, ANDROID_ALL_JAR...).
tools="${FIELDCAST_TOOLS:-$(pwd)/.tools}"
[ -f "$tools/kotlin.env" ] || bash scripts/install-kotlin.sh
# shellcheck disable=SC1091
. "$tools/kotlin.env"
