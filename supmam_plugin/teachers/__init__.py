"""Frozen teachers whose features are pretraining targets (``model.target=teacher``).

Registered by name and chosen with ``model.teacher``: ``laion_clap`` (:class:`ClapTeacher`; a
transformers CLAP folder as its checkpoint: :class:`TransformersClapTeacher`) and
``checkpoint_encoder`` (:class:`CheckpointEncoderTeacher`; ``supmam`` in older configs and caches).
Each is a :class:`Teacher`: it says what it hears, gives its native map (what a target cache
stores) and samples it on the student's patch grid. A new teacher is a ``Teacher`` subclass in
its own file here, registered with ``@register_teacher("name")`` and imported below.
"""
from .config import TeacherConfig
from .checkpoint_encoder import CheckpointEncoderTeacher
from .laion_clap import ClapTeacher
from .teacher import TEACHERS, Teacher, register_teacher, teacher_class
from .transformers_clap import TransformersClapTeacher, is_transformers_folder


def build_teacher(cfg, grid, student_seconds: float | None = None, cached: bool = False) -> Teacher:
    """The teacher ``cfg.teacher`` names (cfg: a :class:`TeacherConfig`, e.g. the model's), for a
    student with patch ``grid`` (time, freq) spanning ``student_seconds``; ``cached``: its maps come
    from a target cache (``task.teacher_cache``), so what only computes them may be left unbuilt."""
    if not cfg.teacher_checkpoint:
        raise ValueError(
            f"model.target=teacher needs the teacher's weights: set model.teacher_checkpoint (teacher "
            f"{cfg.teacher}: {teacher_class(cfg.teacher).checkpoint_help}); docs/pretraining.md, section Teachers"
        )
    if cfg.teacher == "laion_clap" and is_transformers_folder(cfg.teacher_checkpoint):  # LAION-CLAP as transformers saves it
        return TransformersClapTeacher.from_config(cfg, grid, student_seconds, cached=cached)
    return teacher_class(cfg.teacher).from_config(cfg, grid, student_seconds, cached=cached)


__all__ = ["TEACHERS", "Teacher", "TeacherConfig", "ClapTeacher", "CheckpointEncoderTeacher", "TransformersClapTeacher",
           "build_teacher",
           "register_teacher", "teacher_class"]
