// The FieldCast Android library: the Kotlin SDK layer (src/sdk), the Android layer (src/android),
// the uniffi bindings generated from the Rust core, and the native libraries per ABI:
// libfieldcast_ffi.so (cargo ndk) and GStreamer's libgstreamer_android.so (ndk-build with the
// GStreamer Android binaries in GSTREAMER_ROOT_ANDROID), with libc++_shared.so.
import java.io.File
import org.gradle.process.CommandLineArgumentProvider

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

/** The Cargo workspace (the repository root, above this Gradle project). */
val workspace: File = rootDir.parentFile

/** Android ABI -> (Rust target, directory of the GStreamer Android binaries). */
val abis = mapOf(
    "arm64-v8a" to ("aarch64-linux-android" to "arm64"),
    "armeabi-v7a" to ("armv7-linux-androideabi" to "armv7"),
    "x86_64" to ("x86_64-linux-android" to "x86_64"),
)
val minSdkVersion = 26

/** The GStreamer plugins the core's graphs use, linked into libgstreamer_android.so. */
val gstreamerPlugins = listOf(
    "coreelements", "app", "videoconvertscale", "videorate", "videotestsrc", "audioconvert",
    "audioresample", "audiotestsrc", "playback", "typefindfunctions", "isomp4", "multifile",
    "mpegtsmux", "mpegtsdemux", "srt", "videoparsersbad", "audioparsers", "androidmedia",
    "openh264", "voaacenc",
)

val gstreamerRoot: Provider<String> = providers.environmentVariable("GSTREAMER_ROOT_ANDROID")
    .orElse(providers.gradleProperty("gstreamer.root.android"))
val jniLibsDir = layout.buildDirectory.dir("generated/jniLibs")
val bindingsDir = layout.buildDirectory.dir("generated/source/uniffi/kotlin")
val gstreamerBuildDir = layout.buildDirectory.dir("gstreamer")

android {
    namespace = "org.fieldcast"
    compileSdk = 35

    defaultConfig {
        minSdk = minSdkVersion
        ndk {
            abiFilters += abis.keys
        }
        // The scenario tests on a device (src/androidTest; android/README.md, "Scenario tests on a
        // device"). Their arguments: -Pandroid.testInstrumentationRunnerArguments.fieldcastApi=...
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets["main"].apply {
        kotlin.srcDirs("src/sdk/kotlin", "src/android/kotlin", bindingsDir)
        jniLibs.srcDir(jniLibsDir)
    }

    // The scenario player and one test class per shipped scenario; the scenarios of the desktop
    // field lab (qa/scenarios/*.json) are the test APK's assets, read by name (`smoke.json`).
    // src/androidTest/jvm holds JVM-only tests that scripts/android-scenario-check.sh runs.
    sourceSets["androidTest"].apply {
        kotlin.srcDirs("src/androidTest/kotlin")
        assets.srcDir(File(workspace, "qa/scenarios"))
    }

    testOptions {
        unitTests.isIncludeAndroidResources = true
        // The test APK's target SDK (a library's would default to minSdk).
        targetSdk = 35
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    implementation("net.java.dev.jna:jna:5.19.1@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")

    testImplementation("junit:junit:4.13.2")
    testImplementation("org.robolectric:robolectric:4.17")
    // The unit tests load the host's build of the core (target/debug) through the desktop JNA.
    testImplementation("net.java.dev.jna:jna:5.19.1")
    testImplementation("org.jetbrains.kotlinx:kotlinx-coroutines-test:1.10.2")
    testImplementation(kotlin("test-junit"))

    // Scenario tests on a device (AndroidJUnitRunner, AndroidJUnit4); the rest of the test APK
    // uses the framework, the SDK and the Android layer only.
    androidTestImplementation("androidx.test:runner:1.7.0")
    androidTestImplementation("androidx.test.ext:junit:1.3.0")
    androidTestImplementation("junit:junit:4.13.2")
}

val ndkDirectory: Provider<String> = androidComponents.sdkComponents.ndkDirectory.map { it.asFile.absolutePath }

/** The ndk-build project that links libgstreamer_android.so (gstreamer-1.0.mk of the GStreamer binaries). */
fun gstreamerMakefiles(work: File): Map<String, String> {
    val androidMk = buildList {
        add("LOCAL_PATH := \$(call my-dir)")
        abis.forEach { (abi, target) -> add("GSTREAMER_ROOT_$abi := \$(GSTREAMER_ROOT_ANDROID)/${target.second}") }
        add("GSTREAMER_ROOT := \$(GSTREAMER_ROOT_\$(TARGET_ARCH_ABI))")
        add("GSTREAMER_NDK_BUILD_PATH := \$(GSTREAMER_ROOT)/share/gst-android/ndk-build/")
        add("GSTREAMER_PLUGINS := ${gstreamerPlugins.joinToString(" ")}")
        add("GSTREAMER_EXTRA_DEPS := gstreamer-app-1.0 gstreamer-video-1.0 gstreamer-audio-1.0 gstreamer-pbutils-1.0")
        add("GSTREAMER_INCLUDE_FONTS := no")
        add("GSTREAMER_INCLUDE_CA_CERTIFICATES := no")
        // FieldCast has its own org.freedesktop.gstreamer.GStreamer: the copied template stays out of the build.
        add("GSTREAMER_JAVA_SRC_DIR := ${File(work, "template-java")}")
        add("GSTREAMER_ASSETS_DIR := ${File(work, "template-assets")}")
        add("include \$(GSTREAMER_NDK_BUILD_PATH)/gstreamer-1.0.mk")
    }
    val applicationMk = listOf(
        "APP_ABI := ${abis.keys.joinToString(" ")}",
        "APP_STL := c++_shared",
        "APP_PLATFORM := android-$minSdkVersion",
        "APP_MODULES := gstreamer_android",
    )
    return mapOf("Android.mk" to androidMk, "Application.mk" to applicationMk).mapValues { it.value.joinToString("\n", postfix = "\n") }
}

/** ndk-build makes libgstreamer_android.so per ABI from the GStreamer Android binaries. */
val gstreamerAndroid by tasks.registering(Exec::class) {
    description = "Links GStreamer and the plugins FieldCast uses into libgstreamer_android.so per ABI"
    val root = gstreamerRoot.orElse("")
    val work = gstreamerBuildDir.get().asFile
    inputs.property("plugins", gstreamerPlugins)
    inputs.property("gstreamerRoot", root)
    outputs.dir(File(work, "libs"))
    workingDir = work
    argumentProviders += CommandLineArgumentProvider {
        listOf(
            "NDK_PROJECT_PATH=.", "APP_BUILD_SCRIPT=jni/Android.mk", "NDK_APPLICATION_MK=jni/Application.mk",
            "NDK_LIBS_OUT=libs", "GSTREAMER_ROOT_ANDROID=${root.get()}", "-j${Runtime.getRuntime().availableProcessors()}",
        )
    }
    doFirst {
        if (!File(root.get()).isDirectory) {
            throw GradleException("set GSTREAMER_ROOT_ANDROID (or gstreamer.root.android) to the unpacked GStreamer Android binaries")
        }
        val jni = File(work, "jni").apply { mkdirs() }
        gstreamerMakefiles(work).forEach { (name, text) -> File(jni, name).writeText(text) }
        executable = File(ndkDirectory.get(), "ndk-build").absolutePath
    }
}

/** The GStreamer crates link against libgstreamer_android.so instead of pkg-config's libraries. */
val gstreamerCrateDeps = listOf(
    "GLIB_2_0", "GOBJECT_2_0", "GIO_2_0", "GSTREAMER_1_0", "GSTREAMER_BASE_1_0", "GSTREAMER_APP_1_0", "GSTREAMER_VIDEO_1_0",
)

/** cargo ndk builds the core for one ABI against that ABI's libgstreamer_android.so. */
val cargoNdkTasks = abis.keys.map { abi ->
    tasks.register<Exec>("cargoNdk-$abi") {
        description = "Builds libfieldcast_ffi.so for $abi with cargo ndk, into the generated jniLibs"
        dependsOn(gstreamerAndroid)
        inputs.dir(File(workspace, "core/src"))
        inputs.dir(File(workspace, "bindings/src"))
        inputs.files(File(workspace, "Cargo.lock"), File(workspace, "Cargo.toml"))
        outputs.dir(jniLibsDir.map { it.dir(abi) })
        val gstLib = gstreamerBuildDir.get().dir("libs/$abi").asFile.absolutePath
        workingDir = workspace
        doFirst { environment("ANDROID_NDK_HOME", ndkDirectory.get()) }
        gstreamerCrateDeps.forEach { dep ->
            environment("SYSTEM_DEPS_${dep}_NO_PKG_CONFIG", "1")
            environment("SYSTEM_DEPS_${dep}_LIB", "gstreamer_android")
            environment("SYSTEM_DEPS_${dep}_SEARCH_NATIVE", gstLib)
        }
        commandLine(
            "cargo", "ndk", "-t", abi, "--platform", "$minSdkVersion",
            "-o", jniLibsDir.get().asFile.absolutePath, "build", "--release", "-p", "fieldcast-ffi",
        )
    }
}

/** Every ABI's core, with GStreamer's runtime and libc++_shared.so next to it. */
val nativeLibraries by tasks.registering(Copy::class) {
    description = "Puts libfieldcast_ffi.so, libgstreamer_android.so and libc++_shared.so per ABI into the generated jniLibs"
    dependsOn(cargoNdkTasks)
    from(gstreamerBuildDir.map { it.dir("libs") }) { include("*/*.so") }
    into(jniLibsDir)
}

/** uniffi-bindgen (bindings/bindgen, the core's uniffi version) reads the built library and writes Kotlin. */
val uniffiBindings by tasks.registering(Exec::class) {
    description = "Generates the Kotlin bindings (package org.fieldcast.ffi) from libfieldcast_ffi.so"
    dependsOn(nativeLibraries)
    val library = jniLibsDir.map { it.file("arm64-v8a/libfieldcast_ffi.so") }
    inputs.file(library)
    outputs.dir(bindingsDir)
    workingDir = workspace
    commandLine(
        "cargo", "run", "-q", "-p", "fieldcast-bindgen", "--bin", "uniffi-bindgen", "--",
        "generate", "--library", library.get().asFile.absolutePath, "--language", "kotlin",
        "--out-dir", bindingsDir.get().asFile.absolutePath, "--no-format",
    )
}

/** The host build of the core, for the Robolectric unit tests. */
val hostLibrary by tasks.registering(Exec::class) {
    description = "Builds target/debug/libfieldcast_ffi.so for the JVM unit tests"
    workingDir = workspace
    commandLine("cargo", "build", "-q", "-p", "fieldcast-ffi")
}

tasks.named("preBuild") { dependsOn(nativeLibraries, uniffiBindings) }

tasks.withType<Test>().configureEach {
    dependsOn(hostLibrary)
    systemProperty("jna.library.path", File(workspace, "target/debug").absolutePath)
}
