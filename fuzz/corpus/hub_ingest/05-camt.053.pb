
-
SEED-5BANKRUMMXXX"BANKIRTHXXX(0Ë¨•¨¢48zŽ
STMT-1
SETTLEMENTè Ð*ŒüÿÿÿÿÿÿÿRUB2ôRUB:A
E1$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4eSEED-0"ÜRUB(0Ü:
E2"ôRUB(0À