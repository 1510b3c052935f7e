"""tf-metatasnet: Meta-TasNet music source separation in TensorFlow / Keras."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="tf-metatasnet",
    version="0.1.0",
    description="Meta-TasNet (Samuel et al., ICASSP 2020) music source separation in TensorFlow/Keras",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["tf_metatasnet", "tf_metatasnet.*"]),
    # The bundled default model and the demo song (tf_metatasnet.assets).
    package_data={"tf_metatasnet.assets": ["*.keras", "*.yaml", "demo_song/*.flac"]},
    install_requires=[
        # TensorFlow, Keras and LiteRT pinned to the minor versions the tests ran with: the
        # few internals tf_metatasnet/compat.py uses may change in any release.
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "numpy>=1.26,<3",
        "tqdm>=4.66,<5",
        # Audio I/O and resampling (tensorflow-io is not used: its last release cannot load
        # its ops with TensorFlow >= 2.18). ffmpeg (a system package) decodes mp3/m4a/aac.
        "soundfile>=0.12,<1",
        "soxr>=0.3,<2",
        # MUSDB18 reading (also .stem.mp4 through stempeg + ffmpeg) and BSS Eval v4 scoring.
        "musdb>=0.4.2,<0.5",
        "museval>=0.4.1,<0.5",
        "stempeg>=0.2.3,<0.3",
        "pyyaml>=6,<7",
        # The prepared MUSDB18 cache is a TensorFlow Datasets dataset (tf_metatasnet.data.musdb_multirate).
        "tensorflow-datasets>=4.9.6,<5",
        # Training logs (keras.callbacks.TensorBoard); TensorFlow no longer installs it.
        "tensorboard>=2.20,<3",
        # The LiteRT interpreter: runs, checks and measures the exported TFLite models; its
        # TFLite schema reads and edits them (tf_metatasnet.export.tflite.flatbuffer).
        "ai-edge-litert>=2.3,<2.4",
        # Read and written directly: .keras weights (HDF5), TFLite flatbuffers, TFDS paths.
        "h5py>=3.10,<4",
        "flatbuffers>=24.3,<26",
        "etils>=1.5,<2",
        # metatasnet demo's spectrogram figure.
        "matplotlib>=3.8,<4",
        # Generated MIDI songs (tf_metatasnet.data.synth.midi_songs), rendered by FluidSynth.
        "mido>=1.3,<2",
    ],
    extras_require={
        # Only for reading the authors' PyTorch checkpoints (CPU build is enough).
        "torch": ["torch>=2.6,<2.14"],
        # The tests; import-linter checks the import contract (.importlinter), hypothesis
        # generates the output paths' property test.
        "dev": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "pyyaml>=6,<7", "tensorflow-serving-api>=2.21,<2.22",
                "import-linter>=2.1,<3", "hypothesis>=6.100,<7"],
        # Only for benchmarks/ running the authors' whole-song procedure side by side with
        # ours (their evaluate.py resamples with librosa's kaiser_best, which needs resampy).
        "bench": ["librosa>=0.10,<0.12", "resampy>=0.4,<0.5"],
        # gRPC client of TF Serving (tf_metatasnet.inference.backends.serving.GrpcBackend); REST needs nothing.
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],
    },
    entry_points={"console_scripts": ["metatasnet=tf_metatasnet.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
