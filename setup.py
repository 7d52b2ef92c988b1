"""supmam-plugin: SupMAM-CLAP (Interspeech 2023) as a fairseq user-dir plugin."""
from setuptools import find_packages, setup

setup(
    name="supmam-plugin",
    version="0.1.0",
    description="Masked audio modelling with CLAP and multi-objective learning, for fairseq",
    packages=find_packages(include=["supmam_plugin", "supmam_plugin.*", "manifests", "manifests.*"]),
    # the hydra recipes travel with the package (examples/supmam in a checkout links to them)
    package_data={"supmam_plugin.recipes": ["pretraining/*.yaml", "finetuning/*.yaml", "clap/*.yaml"],
                  "supmam_plugin.inference": ["transformers_remote/*.py"]},  # copied into transformers exports
    python_requires=">=3.11,<3.12",
    # Versions are pinned in requirements.txt (installed by `make install`): fairseq-fixed must
    # be installed with --no-deps, which setup.py cannot express.
    install_requires=[],
    extras_require={"test": ["pytest==8.3.4", "pytest-xdist==3.8.0"]},
    entry_points={
        "console_scripts": [
            "supmam-manifest-audioset=manifests.audioset:main",
            "supmam-manifest-esc50=manifests.esc50:main",
            "supmam-manifest-speechcommands=manifests.speech_commands:main",
            "supmam-validate-manifest=supmam_plugin.commands.validate_manifest:main",
            "supmam-pack-manifest=supmam_plugin.commands.pack_manifest:main",
            "supmam-precompute-teacher=supmam_plugin.commands.precompute_teacher:main",
            "supmam-convert-audiomae=supmam_plugin.commands.convert_audiomae:main",
            "supmam-extract-embeddings=supmam_plugin.commands.extract_embeddings:main",
            "supmam-esc50-folds=supmam_plugin.commands.esc50_folds:main",
            "supmam-plot-reconstruction=supmam_plugin.commands.plot_reconstruction:main",
            "supmam-plot-curves=supmam_plugin.commands.plot_curves:main",
            "supmam-plot-results=supmam_plugin.commands.plot_results:main",
            "supmam-plot-per-class-ap=supmam_plugin.commands.plot_per_class_ap:main",
            "supmam-linear-probe=supmam_plugin.commands.linear_probe:main",
            "supmam-train-tokenizer=supmam_plugin.commands.train_tokenizer:main",
            "supmam-demo=supmam_plugin.commands.demo:main",
            "supmam-export=supmam_plugin.commands.export:main",
            "supmam-export-clap=supmam_plugin.commands.export_clap:main",
            "supmam-recipes=supmam_plugin.recipes:main",
        ]
    },
)
