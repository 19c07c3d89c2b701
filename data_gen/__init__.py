"""Task generators for Countdown and multiplication, in verl's row schema."""
