# Sourced by the recipe scripts, from the repository root: LEFT and RIGHT, the halves of
# MNI152NLin6Asym (x < -4 mm for training, x > +4 mm for validation), split on first use, and VF,
# the factors every recipe validates at.
LEFT=.data/mni152nlin6asym_t1_1mm_left.nii.gz; RIGHT=.data/mni152nlin6asym_t1_1mm_right.nii.gz
[ -f $LEFT ] || .venv/bin/python benchmarks/split_hemispheres.py .data/mni152nlin6asym_t1_1mm.nii.gz
VF="2,2,2;2,2,3;3,3,3;1,1,4"
