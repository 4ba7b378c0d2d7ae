"""What a run reads, checked and bounded before it is used: `validate` (text, numbers, paths, the one size
rule of a file's read) and `media` (images, view sets and videos, decoded)."""
