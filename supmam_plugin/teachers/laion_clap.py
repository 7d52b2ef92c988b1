"""Teacher ``laion_clap``: the frozen LAION-CLAP audio encoder (HTS-AT), the paper's teacher.

SupMAM-CLAP's decoder predicts, for every 16x16 patch of the student's (1024 time x 128 freq)
fbank, a feature vector of CLAP's audio encoder fed the whole clip (10 s at 48 kHz). HTS-AT's last
stage gives a token map of 2 frequency rows x 32 time steps; `ClapTeacher` captures it (a forward
pre-hook on HTS-AT's `tscam_conv`), samples it at the student's 64 x 8 patch centres and, if
asked, passes every token through CLAP's audio projection into the joint audio-text space.

laion-clap's top-level package downloads a text tokenizer when imported, so only its audio
branch is imported here (`import_htsat`), without running the package's `__init__`.
"""
import importlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from ..core.checkpoints import CheckpointError, fairseq_configs, is_fairseq_checkpoint, load_strict, read_checkpoint
from .teacher import Teacher, fit_to_length, register_teacher

logger = logging.getLogger(__name__)

CLAP_JOINT_DIM = 512  # CLAP's joint_embed_shape: the width of every released audio projection
RANDOM_TEACHER_SEED = 0
PATCH_GRID = (64, 8)  # (time, freq) patches of a 1024 x 128 fbank in 16 x 16 patches
FEATURES = ("tokens", "projected")
# HTS-AT's first-stage width, as laion-clap's create_htsat_model sets it, per model name.
HTSAT_NAME_BY_EMBED_DIM = {96: "HTSAT-tiny", 128: "HTSAT-base", 256: "HTSAT-large"}
# channels of HTS-AT's last-stage map (embed_dim x 8, its num_features), known before building it
HTSAT_TOKEN_WIDTH = {name: 8 * dim for dim, name in HTSAT_NAME_BY_EMBED_DIM.items()}


def _laion_clap_dir() -> Path:
    if "laion_clap" in sys.modules:
        return Path(sys.modules["laion_clap"].__path__[0])
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("laion-clap is not installed: pip install laion-clap==1.1.7")
    return Path(list(spec.submodule_search_locations)[0])


def import_htsat():
    """Import laion-clap's HTS-AT offline and return its `create_htsat_model`.

    Registers a bare `laion_clap` package (its `__path__` only) unless laion_clap is already
    imported, so that `laion_clap/__init__.py` (which pulls in a tokenizer download through
    `laion_clap.training.data`) never runs.
    """
    if "laion_clap" not in sys.modules:
        package_dir = str(_laion_clap_dir())
        package = types.ModuleType("laion_clap")
        package.__path__ = [package_dir]
        package.__spec__ = importlib.machinery.ModuleSpec("laion_clap", None, is_package=True)
        package.__spec__.submodule_search_locations = [package_dir]
        sys.modules["laion_clap"] = package
    htsat = importlib.import_module("laion_clap.clap_module.htsat")
    return htsat.create_htsat_model


def read_clap_model_config(model_name: str = "HTSAT-tiny") -> dict:
    """laion-clap's model config (`clap_module/model_configs/{model_name}.json`) as a dict."""
    config_dir = _laion_clap_dir() / "clap_module" / "model_configs"
    path = config_dir / f"{model_name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in config_dir.glob("HTSAT-*.json"))
        raise ValueError(f"unknown CLAP audio model {model_name!r}; known HTS-AT models: {known}")
    with open(path) as f:
        return json.load(f)


def read_clap_state_dict(path) -> dict:
    """The state dict of a released LAION-CLAP checkpoint, with any `module.` prefix removed.

    Accepts the state dict at the top level or under `state_dict`; opened safely
    (:func:`~supmam_plugin.core.checkpoints.read_checkpoint`).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"CLAP checkpoint {str(path)!r} does not exist: give the path to a released "
            "LAION-CLAP checkpoint (e.g. 630k-audioset-best.pt for HTSAT-tiny), or 'random' "
            "for tests only"
        )
    checkpoint = read_checkpoint(str(path))
    if not isinstance(checkpoint, dict):
        raise ValueError(f"CLAP checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a state dict")
    state = checkpoint.get("state_dict", checkpoint)
    return {key.removeprefix("module."): value for key, value in state.items()}


RELEASE_PREFIXES = ("audio_branch.", "audio_projection.")  # what a release holds of the audio side, as CLAP names it


def is_htsat_clap(state) -> bool:
    """Whether ``state`` (a file read by read_checkpoint) is a CLAP trained here with the HTS-AT tower."""
    if not is_fairseq_checkpoint(state):
        return False
    try:
        _, model_cfg, _ = fairseq_configs(state, "", models=("clap",))
    except CheckpointError:
        return False
    return model_cfg.get("audio_tower", "vit") == "htsat"


def release_state_of_trained_clap(path: str, state=None) -> tuple[dict, str]:
    """A CLAP trained here with the HTS-AT tower (model ``clap``, ``model.audio_tower=htsat``) in LAION-CLAP's
    release layout: ({"state_dict": {"audio_branch.*", "audio_projection.*", "logit_scale_a"}}, its
    ``htsat_model``). The caption tower is not LAION's RoBERTa, so it is left out: a release's audio
    side is what the ``laion_clap`` teacher reads. ``state``: the file as read_checkpoint read it, if at hand."""
    state = read_checkpoint(path) if state is None else state
    if not is_fairseq_checkpoint(state):
        raise CheckpointError(f"{path}: not a fairseq checkpoint of model 'clap' (fairseq-hydra-train --config-dir "
                              "recipes/clap --config-name htsat makes one)")
    _, model_cfg, _ = fairseq_configs(state, path, models=("clap",))
    if model_cfg.get("audio_tower", "vit") != "htsat":
        raise CheckpointError(f"{path}: a CLAP with the {model_cfg.get('audio_tower', 'vit')!r} audio tower; only an "
                              "HTS-AT tower has LAION-CLAP's layout. A ViT-tower CLAP is read as it is: "
                              f"model.teacher=clap model.teacher_checkpoint={path}")
    weights = {k: v for k, v in state["model"].items() if k.startswith(RELEASE_PREFIXES)}
    weights["logit_scale_a"] = state["model"]["logit_scale"]
    return {"state_dict": weights}, str(model_cfg.get("htsat_model", "HTSAT-tiny"))


class _TokenMapCaptured(Exception):
    """Raised by the `tscam_conv` pre-hook: it carries the token map and ends HTS-AT's forward."""

    def __init__(self, token_map: torch.Tensor):
        super().__init__("HTS-AT token map captured")
        self.token_map = token_map


def _stop_at_token_map(module, inputs):
    raise _TokenMapCaptured(inputs[0])


def _cast_to_body_dtype(patch_embed, inputs):
    """The log-mel front end runs in float32; the Swin body may run in half precision."""
    return (inputs[0].to(patch_embed.proj.weight.dtype),) + tuple(inputs[1:])


FUSION_TYPE = "aff_2d"  # the fusion releases' (630k-fusion-best.pt, 630k-audioset-fusion-best.pt)


def is_fusion_release(state: dict) -> bool:
    """Whether a release's state dict (``read_clap_state_dict``) holds the fusion branch's weights."""
    return any(key.startswith("audio_branch.patch_embed.fusion_model.") for key in state)


def build_htsat(audio_cfg: dict, fusion: bool = False) -> nn.Module:
    """LAION-CLAP's HTS-AT of a model config's ``audio_cfg`` (:func:`read_clap_model_config`), as
    ``CLAP.audio_branch`` is built (so its keys are a release's ``audio_branch.*``); ``fusion``: with the
    fusion releases' feature-fusion branch (``aff_2d``). Its front end (STFT, log-mel, bn0) runs in
    float32 whatever the body's dtype: keep it so after ``.half()`` or ``.to(dtype)`` with
    :func:`front_end_to_float32`."""
    branch = import_htsat()(SimpleNamespace(**audio_cfg), enable_fusion=fusion, fusion_type=FUSION_TYPE if fusion else "None")
    branch.patch_embed.register_forward_pre_hook(_cast_to_body_dtype)
    return branch


def front_end_to_float32(branch: nn.Module) -> None:
    """Back to float32 for HTS-AT's front end (a float16 power spectrum overflows, log(1e-10) underflows)."""
    branch.spectrogram_extractor.float()
    branch.logmel_extractor.float()
    branch.bn0.float()


class FusionMel(nn.Module):
    """The mel the fusion releases were trained on: laion-clap computes it in its data pipeline
    (``training/data.get_mel``: torchaudio's MelSpectrogram, HTK mel scale, no filter normalisation,
    power 2, then 10 log10(max(mel, 1e-10))), not inside the model as the unfused HTS-AT does
    (torchlibrosa, Slaney scale). Written here with torch's STFT and librosa's filters (laion-clap
    aligns it to librosa's melspectrogram; torchaudio is not a dependency).

    forward: (B, S) float32 waveform -> (B, frames, mel_bins)."""

    def __init__(self, audio_cfg: dict):
        super().__init__()
        import librosa

        self.n_fft, self.hop = audio_cfg["window_size"], audio_cfg["hop_size"]
        filters = librosa.filters.mel(sr=audio_cfg["sample_rate"], n_fft=self.n_fft, n_mels=audio_cfg["mel_bins"],
                                      fmin=audio_cfg["fmin"], fmax=audio_cfg["fmax"], htk=True, norm=None)
        self.register_buffer("filters", torch.tensor(filters, dtype=torch.float32), persistent=False)  # (mel, freqs)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(waveform.float(), self.n_fft, self.hop, self.n_fft, self.window, center=True,
                              pad_mode="reflect", return_complex=True).abs().square()  # (B, freqs, frames)
        return 10.0 * torch.log10(torch.clamp(self.filters @ spectrum, min=1e-10)).transpose(1, 2)


def fusion_input(waveform: torch.Tensor, clip_samples: int, mel: FusionMel) -> dict:
    """A fusion HTS-AT's input for clips of at most ``clip_samples`` (longer ones are cropped): as
    laion-clap's pipeline makes it, the clip's mel four times (``mel_fusion``, (B, 4, frames, mel)) and
    ``longer`` False. HTS-AT then reads the first copy only: its fusion branch (``mel_conv2d``,
    ``fusion_model``) fuses crops of clips LONGER than 10 s and does nothing here."""
    spectrum = mel(fit_to_length(waveform, clip_samples).float())
    return {"mel_fusion": spectrum.unsqueeze(1).expand(-1, 4, -1, -1).contiguous(),
            "longer": torch.zeros(len(waveform), dtype=torch.bool, device=waveform.device)}


def htsat_input(waveform: torch.Tensor, clip_samples: int) -> dict:
    """HTS-AT's input without fusion: (B, S) waveforms at its rate, zero-padded or cropped to
    ``clip_samples`` (LAION-CLAP hears zero-padded clips), float32."""
    waveform = fit_to_length(waveform, clip_samples).float()
    return {"waveform": waveform, "longer": torch.zeros(len(waveform), dtype=torch.bool, device=waveform.device)}


@register_teacher("laion_clap")
class ClapTeacher(Teacher):
    """Frozen HTS-AT audio encoder of LAION-CLAP giving one target vector per student patch.

    Args:
        checkpoint: path to a released LAION-CLAP `.pt` (audio keys under `audio_branch.`,
            projection under `audio_projection.`, possibly behind `module.` and `state_dict`),
            or "random" for a seeded, randomly initialised teacher (tests and demos only).
        model_name: laion-clap model config, "HTSAT-tiny" (630k-*.pt checkpoints) or
            "HTSAT-base" (music_speech_*.pt checkpoints).
        feature: "tokens" (HTS-AT's last-stage tokens, width 768 tiny / 1024 base) or
            "projected" (each token through CLAP's audio projection, width 512).
        grid: the student's patch grid (time, freq).
        interpolation: `F.grid_sample` mode sampling the 32 x 2 token map on `grid`.
        student_seconds: the time the student's `grid` spans (10.24 s for 1024 frames);
            None: the teacher's own span (10 s), i.e. a plain resize.
        state: the release-layout state dict when the caller has read it already (``checkpoint``
            then names where it came from).

    The module stays in eval mode and never requires grad. Its log-mel front end stays in
    float32 even after `.half()` (a float16 power spectrum overflows and log(1e-10) underflows).
    """

    checkpoint_help = "a released LAION-CLAP .pt, e.g. 630k-audioset-best.pt for HTSAT-tiny; 'random' for tests only"

    def __init__(
        self,
        checkpoint: str,
        model_name: str = "HTSAT-tiny",
        feature: str = "tokens",
        grid=PATCH_GRID,
        interpolation: str = "bilinear",
        student_seconds: float | None = None,
        state: dict | None = None,
        build_now: bool = True,
    ):
        super().__init__(grid, student_seconds, interpolation)
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
        self.checkpoint = str(checkpoint)
        self.model_name = model_name
        self.feature = feature

        config = read_clap_model_config(model_name)
        self.clip_samples = config["audio_cfg"]["clip_samples"]
        self.sample_rate = config["audio_cfg"]["sample_rate"]  # 48 kHz, read from the file (not up-sampled)
        self.seconds = self.clip_samples / self.sample_rate  # 10 s
        self.audio_cfg = config["audio_cfg"]
        if model_name not in HTSAT_TOKEN_WIDTH:
            raise ValueError(f"clap_model {model_name!r}: choose one of {sorted(HTSAT_TOKEN_WIDTH)}")
        self.token_width = HTSAT_TOKEN_WIDTH[model_name]
        self.output_dim = CLAP_JOINT_DIM if feature == "projected" else self.token_width
        self.audio_branch = None  # HTS-AT: built now, or (build_now=False) at the first token_map
        self.fusion, self.fusion_mel = False, None  # a fusion release's branch and mel: known when it is built
        self.audio_projection = None
        if feature == "projected":
            with torch.random.fork_rng(devices=[]):  # the random teacher's projection: its own seed
                torch.manual_seed(RANDOM_TEACHER_SEED + 1)
                self.audio_projection = nn.Sequential(
                    nn.Linear(self.token_width, CLAP_JOINT_DIM), nn.ReLU(), nn.Linear(CLAP_JOINT_DIM, CLAP_JOINT_DIM))
        if self.checkpoint == "random":
            logger.warning(
                "ClapTeacher uses a RANDOMLY INITIALISED %s (seed %d): its targets are meaningless "
                "for real runs; give the path of a released LAION-CLAP checkpoint instead",
                model_name, RANDOM_TEACHER_SEED,
            )
        self._state = state
        if build_now:
            self.build_audio_branch()
        elif self.audio_projection is not None and self.checkpoint != "random":
            self._load_checkpoint(self.checkpoint, state, parts=("audio_projection",))
        self.freeze()

    def build_audio_branch(self) -> None:
        """HTS-AT with the checkpoint's weights (seeded random for "random"), where the teacher is
        (:meth:`follow`); with the fusion branch when the release has one. A model whose targets come
        from a cache never calls it: it needs only ``targets_from_token_map`` (and the projection), not
        HTS-AT's 31 M weights nor laion-clap."""
        if self.audio_branch is not None:
            return
        state = None if self.checkpoint == "random" else (self._state or read_clap_state_dict(self.checkpoint))
        self.fusion = state is not None and is_fusion_release(state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_TEACHER_SEED)
            self.audio_branch = build_htsat(self.audio_cfg, fusion=self.fusion)
        self.fusion_mel = FusionMel(self.audio_cfg) if self.fusion else None
        if self.audio_branch.num_features != self.token_width:
            raise ValueError(f"HTS-AT {self.model_name} has {self.audio_branch.num_features} channels, "
                             f"HTSAT_TOKEN_WIDTH says {self.token_width}")
        if state is not None:
            self._load_checkpoint(self.checkpoint, state)
        self._state = None  # the weights are in the module now
        self.freeze()
        if self.followed is not None:
            self.follow(self.followed, force=True)

    @classmethod
    def from_config(cls, cfg, grid, student_seconds: float | None = None, cached: bool = False) -> "ClapTeacher":
        """The teacher of a model config (``model.teacher_checkpoint``, ``clap_model``, ``clap_feature``,
        ``teacher_interpolation``); ``cached``: its maps come from a cache, HTS-AT is built only if asked.
        (A transformers CLAP folder is read by ``TransformersClapTeacher``: ``build_teacher`` picks it.)"""
        return cls(cfg.teacher_checkpoint, cfg.clap_model, cfg.clap_feature, grid, cfg.teacher_interpolation,
                   student_seconds=student_seconds, build_now=not cached)

    def _load_checkpoint(self, path: str, state: dict | None = None, parts: tuple | None = None):
        """Load the release's keys of ``parts`` (default: every child module) strictly."""
        state = read_clap_state_dict(path) if state is None else state
        prefixes = tuple(f"{name}." for name in (parts or [name for name, _ in self.named_children()]))
        given = {key: value for key, value in state.items() if key.startswith(prefixes)}
        embedding = given.get("audio_branch.patch_embed.proj.weight")
        guess = None if embedding is None else HTSAT_NAME_BY_EMBED_DIM.get(embedding.shape[0])
        hint = f" (this checkpoint's audio branch looks like {guess!r})" if guess else ""
        load_strict(self, given, path, what=f"ClapTeacher(model_name={self.model_name!r}, feature={self.feature!r})",
                    fix=f"pick the model_name that matches the checkpoint{hint} (630k-*.pt: 'HTSAT-tiny'; "
                    "music_speech_*.pt and music_audioset_*.pt: 'HTSAT-base'; the fusion releases: 'HTSAT-tiny')")

    def _apply(self, fn, recurse=True):
        # `.half()`, `.to(dtype)` (and fairseq's --fp16, which halves the whole model) come here:
        # the STFT / log-mel / bn0 front end stays float32, where float16 gives -inf on silence.
        super()._apply(fn, recurse)
        if self.audio_branch is not None:
            front_end_to_float32(self.audio_branch)
        if self.fusion_mel is not None:
            self.fusion_mel.float()
        return self

    @torch.no_grad()
    def token_map(self, waveform_48k: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """HTS-AT's native last-stage map, as seen by `tscam_conv`.

        (B, S) float waveform at 48 kHz (padded with zeros / cropped to `clip_samples`; `lengths`
        is not used: LAION-CLAP hears zero-padded clips) -> (B, C, 2, 32): batch, channels (`token_width`), 2 frequency rows (low first),
        32 time steps. The rest of HTS-AT (tscam_conv and the heads) is skipped. This native
        map is what a target cache should store; `targets_from_token_map` makes targets of it.
        """
        if waveform_48k.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(waveform_48k.shape)}")
        self.build_audio_branch()
        device = self.audio_branch.bn0.weight.device
        if self.fusion:
            clips = fusion_input(waveform_48k.to(device), self.clip_samples, self.fusion_mel.to(device))
        else:
            clips = htsat_input(waveform_48k.to(device), self.clip_samples)
        hook = self.audio_branch.tscam_conv.register_forward_pre_hook(_stop_at_token_map)
        try:
            self.audio_branch(clips, device=device)
        except _TokenMapCaptured as captured:
            return captured.token_map
        finally:
            hook.remove()
        raise RuntimeError("HTS-AT's forward ended without reaching tscam_conv")

    @torch.no_grad()
    def finish_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, L, token_width) sampled tokens -> through CLAP's audio projection when
        ``feature == "projected"`` (B, L, 512); as they are otherwise."""
        if self.audio_projection is None:
            return targets
        return self.audio_projection(targets.to(self.audio_projection[0].weight.dtype))

    def identity(self) -> dict:
        return teacher_identity(self.checkpoint, self.model_name)


def teacher_identity(checkpoint: str, model_name: str = "HTSAT-tiny") -> dict:
    """What makes a LAION-CLAP teacher's token maps: {"teacher", "variant" (the HTS-AT config), "checkpoint_sha256"} (the
    file's SHA-256; "random-seed-N" for the random teacher). A teacher cache records it and is
    refused by a model whose teacher differs; the path is not part of it (a copied file is the
    same teacher)."""
    if str(checkpoint) == "random":
        digest = f"random-seed-{RANDOM_TEACHER_SEED}"
    else:
        from ..core.file_hash import file_sha256

        if not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"{checkpoint}: LAION-CLAP checkpoint not found")
        digest = file_sha256(checkpoint)
    return {"teacher": "laion_clap", "variant": model_name, "checkpoint_sha256": digest}
