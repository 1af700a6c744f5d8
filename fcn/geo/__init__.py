"""GeoTIFF scenes in and out of `infer`, and predicted regions as polygons (rasterio, shapely).

    raster    a GeoTIFF read strip by strip as the network's uint8 RGB: bands, the 8/16-bit
              stretch, nodata
    stream    slide prediction over strips: the SlidePredictor's answer in bounded memory
    outputs   the overlay, mask and probability GeoTIFFs, written block by block, all or none
    polygons  connected regions -> GeoJSON features, merged across strips
    job       infer on one scene: the pieces above wired together

Nothing is imported here; rasterio and shapely are imported where they are used.
"""
