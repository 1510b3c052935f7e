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
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "numpy>=1.26,<3",
        "tqdm>=4.66,<5",
    ],
    extras_require={
        # Only for reading the authors' PyTorch checkpoints (CPU build is enough).
        "torch": ["torch>=2.6,<2.14"],
        "dev": ["pytest>=8,<10", "pyyaml>=6,<7"],
    },
    entry_points={"console_scripts": ["metatasnet=tf_metatasnet.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
