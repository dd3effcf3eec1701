module devaddr

go 1.19
