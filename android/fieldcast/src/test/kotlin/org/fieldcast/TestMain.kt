package org.fieldcast

import kotlin.system.exitProcess
import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener

/**
 * Runs the JVM tests named on the command line with JUnit 4 and prints one line per test, JUnit's
 * own summary, and `kotlin: N passed, M failed`; exits non-zero on any failure.
 */
fun main(args: Array<String>) {
    val classes = args.map { Class.forName(it) }
    val core = JUnitCore()
    core.addListener(object : RunListener() {
        private var started = 0L

        override fun testStarted(description: Description) {
            started = System.nanoTime()
            println("test ${description.className}.${description.methodName} ...")
        }

        override fun testFailure(failure: Failure) {
            println("  FAILED: ${failure.message}")
            failure.exception.printStackTrace(System.out)
        }

        override fun testFinished(description: Description) {
            println("  done in %.1f s".format((System.nanoTime() - started) / 1e9))
        }
    })
    val result = core.run(*classes.toTypedArray())
    val failed = result.failureCount
    println(if (result.wasSuccessful()) "OK (${result.runCount} tests)" else "FAILURES!!! Tests run: ${result.runCount}, Failures: $failed")
    println("kotlin: ${result.runCount - failed} passed, $failed failed")
    exitProcess(if (result.wasSuccessful()) 0 else 1)
}
