from setuptools import find_packages, setup

setup(
    name="rim-core",
    version="0.1.0",
    description="Recurrent Independent Mechanisms (Goyal et al. 2019) for PyTorch, with "
                "sequential-MNIST and MiniGrid experiments",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["rim_core", "rim_core.*", "experiments", "experiments.*"]),
    install_requires=[
        "torch>=2.1",
        "numpy",
    ],
    extras_require={
        # everything the experiments need; `pip install rim-core` alone is just the library
        "experiments": [
            "torch>=2.3",  # main.py's torch.amp.GradScaler("cuda")
            "torchvision",
            "tqdm",
            "tensorboardX",
            "matplotlib",
            "pillow",
            "imageio",
            "gymnasium",
            "minigrid",
            "torch-ac==1.4.0",
        ],
        "test": ["pytest", "ruff"],
    },
)
