"""Archives: the split-zip reader and safe extraction (zip, split zip, tar) into a folder."""
