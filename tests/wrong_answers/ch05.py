"""Wrong answers to chapter 5's exercises."""

import torch


def pooled_with_padding(img, txt, txt_mask, mode):
    v, t = img.mean(dim=1), txt.sum(dim=1) / txt.size(1)
    return v * t if mode == "product" else torch.cat((v, t), dim=1)


def masked_sum_over_length(img, txt, txt_mask, mode):
    t = torch.einsum("btd,bt->bd", txt, txt_mask.to(txt.dtype)) / txt_mask.shape[-1]
    v = img.sum(1) / img.shape[1]
    return v * t if mode == "product" else torch.cat((v, t), dim=1)


def text_then_image(img, txt, txt_mask, mode):
    w = txt_mask[..., None].float()
    t = (txt * w).sum(1) / w.sum(1)
    v = img.mean(1)
    return torch.mul(t, v) if mode == "product" else torch.hstack([t, v])


def dot_instead_of_product(img, txt, txt_mask, mode):
    w = txt_mask.float()
    t = (txt * w[..., None]).sum(1) / w.sum(1, keepdim=True)
    v = img.mean(1)
    if mode == "concat":
        return torch.cat([v, t], -1)
    return torch.einsum("bd,bd->b", v, t)


def _sequence(fusion, img, txt):
    B = img.size(0)
    cls = fusion.cls.repeat(B, 1, 1)
    return cls, fusion.type_emb.weight


def forgot_type_embeddings(fusion, img, txt, txt_mask):
    cls, _ = _sequence(fusion, img, txt)
    x = torch.cat((cls, img, txt), dim=1)
    keep = torch.cat((torch.ones(img.size(0), img.size(1) + 1).bool(), txt_mask), dim=1)
    out, _ = fusion.encoder(x, key_mask=keep)
    return out[:, 0, :]


def types_the_wrong_way_round(fusion, img, txt, txt_mask):
    cls, types = _sequence(fusion, img, txt)
    x = torch.cat((cls, img + types[1], txt + types[0]), dim=1)
    keep = torch.cat((torch.ones(img.size(0), img.size(1) + 1).bool(), txt_mask), dim=1)
    return fusion.encoder(x, key_mask=keep)[0][:, 0]


def forgot_the_padding(fusion, img, txt, txt_mask):
    cls, types = _sequence(fusion, img, txt)
    x = torch.cat((cls, img + types[0], txt + types[1]), dim=1)
    return fusion.encoder(x)[0][:, 0]


def torch_padding_convention(fusion, img, txt, txt_mask):
    cls, types = _sequence(fusion, img, txt)
    x = torch.cat((cls, img + types[0], txt + types[1]), dim=1)
    pad = torch.cat((torch.zeros(img.size(0), img.size(1) + 1).bool(), txt_mask == 0), dim=1)
    return fusion.encoder(x, key_mask=pad)[0][:, 0]  # True = padding, as torch's key_padding_mask


def mean_of_all_rows(fusion, img, txt, txt_mask):
    cls, types = _sequence(fusion, img, txt)
    x = torch.cat((cls, img + types[0], txt + types[1]), dim=1)
    keep = torch.cat((torch.ones(img.size(0), img.size(1) + 1).bool(), txt_mask), dim=1)
    return fusion.encoder(x, key_mask=keep)[0].mean(dim=1)


def sequential_exchange(block, img, txt, txt_mask):
    txt = txt + block.t_from_i(block.norm_t(txt), context=block.norm_i(img))[0]
    img = img + block.i_from_t(block.norm_i(img), context=block.norm_t(txt), key_mask=txt_mask)[0]
    txt, _ = block.text_block(txt, key_mask=txt_mask)
    img, _ = block.image_block(img)
    return img, txt


def image_sees_text_padding(block, img, txt, txt_mask):
    t_in, i_in = block.norm_t(txt), block.norm_i(img)
    t2 = txt + block.t_from_i(t_in, i_in)[0]
    i2 = img + block.i_from_t(i_in, t_in)[0]
    return block.image_block(i2)[0], block.text_block(t2, txt_mask)[0]


def raw_keys_and_values(block, img, txt, txt_mask):
    t2 = txt + block.t_from_i(block.norm_t(txt), context=img)[0]
    i2 = img + block.i_from_t(block.norm_i(img), context=txt, key_mask=txt_mask)[0]
    return block.image_block(i2)[0], block.text_block(t2, key_mask=txt_mask)[0]


def text_self_attention_unmasked(block, img, txt, txt_mask):
    t_in, i_in = block.norm_t(txt), block.norm_i(img)
    t2 = txt + block.t_from_i(t_in, context=i_in)[0]
    i2 = img + block.i_from_t(i_in, context=t_in, key_mask=txt_mask)[0]
    return block.image_block(i2)[0], block.text_block(t2)[0]


def attention_modules_swapped(block, img, txt, txt_mask):
    t_in, i_in = block.norm_t(txt), block.norm_i(img)
    t2 = txt + block.i_from_t(t_in, context=i_in)[0]
    i2 = img + block.t_from_i(i_in, context=t_in, key_mask=txt_mask)[0]
    return block.image_block(i2)[0], block.text_block(t2, key_mask=txt_mask)[0]


WRONG = {
    "5.1": [(pooled_with_padding, "txt.mean(1) averages the padding"),
            (masked_sum_over_length, "not by the padded length"),
            (text_then_image, "image vector comes first"),
            (dot_instead_of_product, "dot product")],
    "5.2": [(forgot_type_embeddings, "add the type embedding"),
            (types_the_wrong_way_round, "not the other way round"),
            (forgot_the_padding, "1 + Ni Trues in front"),
            (torch_padding_convention, "do not invert the mask"),
            (mean_of_all_rows, "the [CLS] output")],
    "5.3": [(sequential_exchange, "read the old streams"),
            (image_sees_text_padding, "key_mask=txt_mask so that no image"),
            (raw_keys_and_values, "normalised streams as keys and values"),
            (text_self_attention_unmasked, "masks its padding too"),
            (attention_modules_swapped, "its own weights")],
}  # fmt: skip
