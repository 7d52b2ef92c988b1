"""A batch's arrays carried in a fairseq logging output, for meters that score a whole subset."""
from __future__ import annotations


class LoggedBatch(str):
    """Arrays of one batch (named by ``fields``) in a logging output. It is a ``str`` ("<B clips>")
    only so that fairseq's progress bars (simple, json, tqdm) print it short instead of choking on
    arrays; pickling (fairseq's all_gather_list across workers) keeps the arrays."""

    fields: tuple[str, ...] = ()

    def __new__(cls, *values):
        if len(values) != len(cls.fields):
            raise TypeError(f"{cls.__name__} takes {', '.join(cls.fields)}")
        obj = super().__new__(cls, f"<{len(values[0])} clips>")
        for name, value in zip(cls.fields, values):
            setattr(obj, name, value)
        return obj

    def __reduce__(self):
        return type(self), tuple(getattr(self, name) for name in self.fields)
