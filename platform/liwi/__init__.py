"""LiWi Platform: decompose in-the-wild photos into editable RGBA layer stacks.

Light on purpose: importing ``liwi`` pulls in nothing heavy (no torch, ray, mlflow).
"""

__version__ = "0.1.0"
