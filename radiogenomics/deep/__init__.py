"""Deep learning per marker (cohort stage): a compact 3-D CNN on tumour-centred crops.

Modules: `crops` (multi-channel crops of one session and the cohort's cached crop array),
`network` (3-D ResNet with MedicalNet-style parameter names, checkpoint loading), `train`
(`CNNClassifier`, a scikit-learn classifier usable inside the nested CV of `cohort.models`),
`saliency` (Grad-CAM maps written as NIfTI and PNG overlays).

torch is imported by `network`, `train` and `saliency` only, so `crops` stays light.
"""
