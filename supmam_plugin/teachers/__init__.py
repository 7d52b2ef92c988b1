"""Frozen teachers whose features are pretraining targets (``model.target=teacher``).

Registered by name and chosen with ``model.teacher``: ``laion_clap`` (:class:`ClapTeacher`) and
``supmam`` (:class:`EncoderTeacher`). Each is a :class:`Teacher`: it says what it hears, gives its
native map (what a target cache stores) and samples it on the student's patch grid.
"""
from .config import TeacherConfig
from .encoder import EncoderTeacher
from .laion_clap import ClapTeacher
from .teacher import TEACHERS, Teacher, register_teacher


def build_teacher(cfg, grid, student_seconds: float | None = None) -> Teacher:
    """The teacher ``cfg.teacher`` names (cfg: a :class:`TeacherConfig`, e.g. the model's), for a
    student with patch ``grid`` (time, freq) spanning ``student_seconds``."""
    if not cfg.teacher_checkpoint:
        raise ValueError(
            f"model.target=teacher needs the teacher's weights: set model.teacher_checkpoint (teacher "
            f"{cfg.teacher}: {TEACHERS[cfg.teacher].checkpoint_help}); README: Teachers"
        )
    return TEACHERS[cfg.teacher].from_config(cfg, grid, student_seconds)


__all__ = ["TEACHERS", "Teacher", "TeacherConfig", "ClapTeacher", "EncoderTeacher", "build_teacher",
           "register_teacher"]
