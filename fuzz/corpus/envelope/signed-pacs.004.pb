
œ
S
SEED-2$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4eBANKRUMMXXX"BANKIRTHXXX(0¿¨•¨¢48bE
RET-1SEED-0$3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"èRUB*AC04@ºåÞÎ½ý4Ž¡ƒ,q®¶­=€D=¾œ6„¥g²R½1EŠçù×éŠÈõ<ÆúŸ^ÇqæÚ«ÌSß:ûBANKRUMMXXX"k1