"""Experiments that span stages (the top layer: imports every stage, no stage imports it).

pipeline / pipeline_cli   ``go1o4 pipeline``: pretrained -> data -> offline -> online -> evaluation (+ baselines)
report                    the pipeline's report.md, plots and tables
pipeline_full             the full-budget run that publishes online_finetune/RESULTS_FULL.md
evidence / evidence_report  ``go1o4 offline-evidence``: offline seeds evaluated on the simulated Go1
config                    PipelineConfig (its presets: online_finetune/configs/{quick,medium,full}.yaml)
"""
