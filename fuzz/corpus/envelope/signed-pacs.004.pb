
œ
S
SEED-2$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4eBANKRUMMXXX"BANKIRTHXXX(0€ÐÄÏ¢48bE
RET-1SEED-0$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"èRUB*AC04@*ýgÚ0&ŽU2*NòÌc¾\•µxü&Ô]Ó“¤œ(Y¨;~k¸EA˜KlCÿ^ÇŽ–fÓ±h¥ˆ5¢Î¦¡êØYBANKRUMMXXX"k1