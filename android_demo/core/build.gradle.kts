// The app's Android-free audio logic. CI does not run Gradle: tests/test_android_core.py
// compiles this module and its JUnit 4 tests with javac directly.
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

dependencies {
    testImplementation(libs.junit)
}
