// The FieldCast Android project: the library (:fieldcast) and the sample app (:sample).
plugins {
    id("com.android.library") version "8.13.0" apply false
    id("com.android.application") version "8.13.0" apply false
    id("org.jetbrains.kotlin.android") version "2.4.20" apply false
}
