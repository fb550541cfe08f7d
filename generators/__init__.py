"""Engine generators: one step spec in, Tekton/Argo/FuseML/KFP out."""
