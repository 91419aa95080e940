"""Feature extraction: decoding, MFCC images and utterance statistics, face crops and landmarks, video windows, transcripts."""
