"""Physiologic maps from raw acquisitions (map computation before intake).

`session` holds the entry points (dsc_session, dwi_session, dti_session, dce_session) that read
4-D NIfTI + sidecars and write `{map}.nii.gz` + `{map}.json`; `dsc`, `diffusion`, `dce` are the
pure numpy functions behind them; `phi` is the peritumoural heterogeneity index of raw DSC.
"""
