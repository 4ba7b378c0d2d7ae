"""What measures a result: `clip` (the CLIP scorer) and `icon_judge` (which shipped icon a picture is
nearest to, the offline `icons` prior's judge)."""
