"""Each command's one-line summary and examples (`finetune-compare COMMAND --help`)."""

MODE_HELP = {
    "compare": ("LoRA vs full fine-tuning over paired seeds: statistics, verdict, report (the main job)",
                "finetune-compare compare --config configs/quickstart.yaml\n"
                "finetune-compare compare --config configs/default.yaml --set data_source=local --set data_dir=DATA\n"
                "(rerunning the same command resumes: finished runs are kept)"),
    "sweep": ("the paired comparison at every point of a grid over one or two config keys, plus a sweep report "
              "of where the verdict changes",
              "finetune-compare sweep --config configs/quickstart.yaml --sweep samples_per_class=100,300 "
              "--output-dir outputs/sweep\n"
              "finetune-compare sweep --config configs/study-minilm.yaml   (grid in the YAML: sweep: {KEY: [...]})\n"
              "(rerunning the same command resumes point by point and run by run)"),
    "train": ("one run of the method chosen by use_lora (the seed's switch)",
              "finetune-compare train --config configs/quickstart.yaml --set use_lora=false"),
    "lora": ("one LoRA run (seed: seed)", "finetune-compare lora --config configs/quickstart.yaml"),
    "full": ("one full fine-tuning run (seed: seed)", "finetune-compare full --config configs/quickstart.yaml"),
    "data": ("build train/validation/test and print counts, lengths, drops and confounds; writes data_summary.json",
             "finetune-compare data --config configs/quickstart.yaml"),
    "optimize": ("Optuna search per method on the validation set; writes optimize/tuned.yaml",
                 "finetune-compare optimize --config configs/quickstart.yaml --trials 10\n"
                 "finetune-compare compare --config configs/quickstart.yaml --config OUT/optimize/tuned.yaml"),
    "predict": ("labels and probabilities from a saved model (save_model: true)",
                "finetune-compare predict --model OUT/runs/lora/seed-42/model --text \"what a film\"\n"
                "finetune-compare predict --model MODEL --input texts.csv --output predictions.csv"),
    "export": ("a saved run (save_model: true) as a folder plain transformers loads, merged where the method allows, "
               "optionally with an ONNX graph, and a model card; reloaded and checked against the run's own test "
               "predictions before it is kept",
               "finetune-compare export --run OUT/runs/lora/seed-42 --output exported/lora --onnx\n"
               "finetune-compare export --run OUT --method lora --output exported/lora   (the run nearest the median)\n"
               "finetune-compare export --run OUT --method lora --seed 43 --output exported/lora --overwrite"),
    "report": ("rebuild statistics, plots and the report from a results folder, without training",
               "finetune-compare report --results outputs/quickstart"),
    "plan": ("before anything trains, what compare or sweep would cost (--config: the runs to train and those done, "
             "one run's time and peak memory from a probe of a few steps, the wall time on the local backend or on "
             "Ray); or, from a finished comparison (--pilot), how many paired runs detect a declared effect or show "
             "a declared margin with probability 0.8 (power)",
             "finetune-compare plan --config configs/quickstart.yaml\n"
             "finetune-compare plan --config configs/study-minilm.yaml --backend ray   (a sweep: its grid)\n"
             "finetune-compare plan --pilot outputs/quickstart --effect 0.01\n"
             "finetune-compare plan --pilot outputs/quickstart --margin 0.02 --power 0.9"),
    "config": ("list every config key (type, default, meaning) or show the resolved config",
               "finetune-compare config --list\n"
               "finetune-compare config --config configs/quickstart.yaml --set lora_r=16"),
}
