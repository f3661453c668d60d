"""The integration of training and hardware: the only package importing both sides.

``mast`` knows nothing of ``hw``, ``sim`` or ``cost_models``; this package adds the
``--hw-profile`` flag to ``mast-train``, records the hardware cost of the evolving masks
during training, writes the end-of-run report and evaluates trained policies in the
accelerator's fixed-point arithmetic.
"""
