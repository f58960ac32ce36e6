
S
SEED-3$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4eBANKRUMMXXX"BANKIRTHXXX(0¸¨•¨¢48jS
CASE-1SEED-0$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"	ÀÄRUB*DUPL2
sent twice