"""The pieces of a synthetic KITTI road scene, which fcn.data.synth.kitti renders and writes:
`world` (road coordinates, the camera, the road plan's types, label values, materials and
colours, polygon and noise primitives), `layout` (drawing a scene's road plan and camera),
`ground` (sky, ground and skyline painting) and `objects` (houses, trees, poles and cars).

Every piece draws from the one per-image generator in a fixed order, so a seed always gives
byte-identical files; moving a draw from one piece to another changes the data.
"""
