"""The pure core: NumPy arrays in, NumPy arrays out. No I/O, no clock, no logging."""
