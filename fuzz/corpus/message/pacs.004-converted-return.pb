
T
SEED-22$5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8dBANKIRTHXXX"BANKRUMMXXX(0∏®ï®¢48bo
RET-22SEED-21$5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
æÔ∑IRR*AC042account closed:êNRUBB
510.969375