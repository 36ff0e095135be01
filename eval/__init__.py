"""The shared mAP calculator, result-file I/O, proposal recall and report rendering (numpy only)."""
