"""Search: a sentence, a picture or an item's vector (or a file name) in, a page of ranked photos and video moments
out; good-match cut-offs, exclusions, near-identical stacks and the fusion with the text found in photos."""
