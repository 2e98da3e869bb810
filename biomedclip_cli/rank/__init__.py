"""The program inside every training rank (the processes torch.distributed.run starts): bmclip's changes to open_clip_train, applied from
outside, then open_clip_train itself.

worker.py is the entry point; patches.py lists every change it makes to open_clip, torch and webdataset. Nothing here imports the
parent's floors (launch, checks, jobs, commands): a rank needs only its settings, the run folder and the domains below.
"""
