"""stages/serving"""
