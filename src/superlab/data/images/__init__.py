"""Image-text data: a generated shapes task with known answers, read and stored like shards.

One shape per step, as in the text pipeline: ``scenes`` makes examples (a rendered scene
and questions with their answers, by question type) from a seed; ``codec`` decodes one
image, keep or reject with a reason; ``shards`` writes a split into the run's data
directory (pixels, rows, rejects, the completion marker last) and reads it back;
``text`` turns a row into token ids around its image's placeholders; ``stage`` is the data
stage of a run with ``data.images`` (both splits, from different seeds).
"""

from __future__ import annotations
